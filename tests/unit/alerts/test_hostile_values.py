"""Hostile values reaching alerts: the value message refuses what the tables cannot hold,
a subject is one line whatever the name, an address is one recipient, and an owner who
cannot be reached is routed somewhere visible."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson
import pytest
from pydantic import ValidationError

from services.alerts.channels.base import DeliveryError
from services.alerts.channels.smtp import build_message
from services.alerts.domain.conditions import Condition
from services.alerts.domain.facts import AlertFacts
from services.alerts.domain.notices import payload_for
from services.alerts.domain.render import render_email
from services.alerts.domain.routing import UNDELIVERABLE, Route, routes_for
from shared.contracts.kpi_values import KpiValueMessage, Owner

T0 = datetime(2026, 3, 10, 12, tzinfo=UTC)


def message(**changes: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "kpi_key": "churn",
        "name": "Churn",
        "value": 0.1,
        "window_s": 86_400,
        "as_of": T0.isoformat(),
        "computed_at": T0.isoformat(),
        "status": "breach",
        "minimum": 0.05,
        "target": 0.02,
        "direction": "lower_is_better",
        "owners": [{"name": "Lan", "email": "lan@example.com"}],
        "update_every_s": 60,
    }
    base.update(changes)
    return base


def facts(name: str) -> AlertFacts:
    return AlertFacts(
        alert_id=1,
        dedupe_key="churn:below_minimum:x",
        kpi_key="churn",
        kpi_name=name,
        condition=Condition.BELOW_MINIMUM,
        severity="critical",
        kind="firing",
        value=0.1,
        minimum=0.05,
        target=0.02,
        direction="lower_is_better",
        started_at=T0,
        ended_at=None,
        scorecard_url="http://scores.example/",
    )


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"name": "n" * 301}, "name"),
        ({"name": "Churn\r\nBcc: attacker@evil.example"}, "name"),
        ({"kpi_key": "k" * 201}, "kpi_key"),
        ({"owners": [{"name": "Lan", "email": "a@ex.com, attacker@evil.example"}]}, "owners"),
        ({"owners": [{"name": "Lan", "email": "a" * 1001 + "@example.com"}]}, "owners"),
        ({"owners": [{"name": "Lan", "webhook_url": "https://h/" + "a" * 1000}]}, "owners"),
        ({"owners": [{"name": f"o{i}"} for i in range(5000)]}, "owners"),
        ({"leading_indicators_in_breach": ["x" * 65]}, "leading_indicators_in_breach"),
        ({"leading_indicators_in_breach": [f"k{i}" for i in range(20_000)]}, "leading"),
    ],
)
def test_a_value_message_that_alerts_could_not_store_is_refused_at_decoding(
    changes: dict[str, Any], field: str
) -> None:
    """Refused as invalid, it is dead-lettered; accepted, its insert failed for ever."""
    assert KpiValueMessage.from_bytes(orjson.dumps(message())).name == "Churn"
    with pytest.raises(ValidationError) as caught:
        KpiValueMessage.from_bytes(orjson.dumps(message(**changes)))
    assert field in str(caught.value)


def test_a_line_break_in_a_name_never_breaks_the_subject() -> None:
    email = render_email(facts("Churn\r\nBcc: attacker@evil.example\u2028more"))
    assert email.subject == (
        "[FIRING] Churn Bcc: attacker@evil.example more is worse than its minimum"
    )
    # A row written before names were validated is folded when it is sent.
    stored = payload_for(facts("Churn"), Route("email", "lan@example.com"))
    stored["subject"] = "stored\nbefore validation"
    built = build_message("kpipulse@example.com", "lan@example.com", stored)
    assert built["Subject"] == "stored before validation"
    assert "Bcc" not in built


@pytest.mark.parametrize(
    "target", ["lan@example.com, attacker@evil.example", "Lan <lan@example.com>", "a\n@b.c"]
)
def test_a_stored_target_of_several_addresses_is_a_final_failure(target: str) -> None:
    payload = {"subject": "s", "text": "t", "html": "<p>t</p>"}
    with pytest.raises(DeliveryError) as caught:
        build_message("kpipulse@example.com", target, payload)
    assert not caught.value.retryable and "exactly one email address" in caught.value.reason


def test_an_owner_nobody_can_reach_gets_the_default_or_an_undeliverable_route() -> None:
    reachable = Owner(name="Lan", email="lan@example.com")
    silent = Owner(name="Minh")
    assert routes_for([reachable, silent], "ops@example.com") == [
        Route("email", "lan@example.com"),
        Route("email", "ops@example.com"),
    ]
    routes = routes_for([reachable, silent], None)
    assert [r.channel for r in routes] == ["email", UNDELIVERABLE]
    lost = routes[1]
    assert not lost.deliverable and lost.target == "owner Minh"
    assert "'Minh' has no email, webhook or Slack address" in str(lost.reason)
    assert "KPIPULSE_ALERTS__DEFAULT_EMAIL" in str(lost.reason)
    # What it would have said is kept for the notification history.
    assert payload_for(facts("Churn"), lost)["subject"].startswith("[FIRING] Churn")


def test_an_owner_whose_stored_address_is_refused_is_never_mailed() -> None:
    refused = [("Lan", "email: must be exactly one email address")]
    (route,) = routes_for([], None, refused)
    assert not route.deliverable and "refused (email: must be exactly one" in str(route.reason)
    assert routes_for([], "ops@example.com", refused) == [Route("email", "ops@example.com")]
