"""Notification contents, webhook signature and retry policy."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime

import orjson
import pytest

from services.alerts.domain.conditions import Condition
from services.alerts.domain.facts import AlertFacts, TrendPoint
from services.alerts.domain.payloads import fingerprint, sign, slack_body, verify, webhook_body
from services.alerts.domain.render import render_email
from services.alerts.domain.retry import backoff_s, http_status_retryable, smtp_code_retryable

T0 = datetime(2026, 3, 10, 12, tzinfo=UTC)


def facts(kind: str = "firing", **changes: object) -> AlertFacts:
    base: dict[str, object] = {
        "alert_id": 7,
        "dedupe_key": "trial_conversion_rate:below_minimum:2026-03-10T12:00:00+00:00",
        "kpi_key": "trial_conversion_rate",
        "kpi_name": "Trial-to-paid <conversion>",
        "condition": Condition.BELOW_MINIMUM,
        "severity": "critical",
        "kind": kind,
        "value": 0.083,
        "minimum": 0.10,
        "target": 0.18,
        "direction": "higher_is_better",
        "started_at": T0,
        "ended_at": None,
        "scorecard_url": "http://scores.example/?kpi=trial_conversion_rate",
        "owners": ("Lan",),
        "trend": (TrendPoint(T0, 0.12), TrendPoint(T0, 0.105), TrendPoint(T0, 0.083)),
        "expires_on": date(2027, 3, 31),
    }
    base.update(changes)
    return AlertFacts(**base)  # type: ignore[arg-type]


def test_email_has_every_required_fact() -> None:
    email = render_email(facts())
    assert email.subject.startswith("[FIRING]")
    assert "Trial-to-paid <conversion>" in email.subject
    for needle in ("0.083", "0.1", "0.18", "0.12 → 0.105 → 0.083", "Lan", "scores.example"):
        assert needle in email.text, needle
    # HTML is escaped and links to the scorecard.
    assert "&lt;conversion&gt;" in email.html
    assert "<conversion>" not in email.html
    assert "href='http://scores.example/?kpi=trial_conversion_rate'" in email.html
    assert "0.12 → 0.105 → 0.083" in email.html


def test_resolve_and_repeat_subjects() -> None:
    assert render_email(facts("resolved", ended_at=T0)).subject.startswith("[RESOLVED]")
    assert render_email(facts("repeat")).subject.startswith("[STILL FIRING]")


def test_webhook_body_is_alertmanager_shaped() -> None:
    body = webhook_body(facts(), receiver="https://hook.example/x")
    assert body["version"] == "4"
    assert body["status"] == "firing"
    assert body["groupKey"]
    (alert,) = body["alerts"]
    assert alert["labels"] == {
        "alertname": "KpiPulse_below_minimum",
        "kpi": "trial_conversion_rate",
        "severity": "critical",
        "condition": "below_minimum",
    }
    assert set(alert["annotations"]) == {"summary", "description"}
    assert alert["startsAt"] == "2026-03-10T12:00:00Z"
    assert alert["endsAt"] == "0001-01-01T00:00:00Z"
    assert alert["fingerprint"] == fingerprint(facts().dedupe_key)
    resolved = webhook_body(facts("resolved", ended_at=T0), receiver="r")
    assert resolved["status"] == "resolved"
    assert resolved["alerts"][0]["endsAt"] == "2026-03-10T12:00:00Z"
    json.dumps(body)  # plain JSON types only


def test_slack_body_has_text_and_blocks() -> None:
    body = slack_body(facts())
    assert body["text"].startswith("[FIRING]")
    assert body["blocks"][0]["type"] == "header"
    assert len(body["blocks"][1]["fields"]) <= 10


def test_signature_round_trip_and_tamper_detection() -> None:
    body = orjson.dumps(webhook_body(facts(), receiver="r"))
    header = sign(body, "s3cret")
    assert header.startswith("sha256=") and len(header) == 7 + 64
    assert verify(body, "s3cret", header)
    assert not verify(body + b" ", "s3cret", header)
    assert not verify(body, "other", header)
    assert not verify(body, "s3cret", None)


@pytest.mark.parametrize("attempt", [1, 2, 3, 5, 10, 100])
def test_backoff_stays_within_full_jitter_bounds(attempt: int) -> None:
    ceiling = min(60.0, 1.0 * 2 ** (attempt - 1))
    assert backoff_s(attempt, base_s=1.0, cap_s=60.0, rand=lambda: 0.0) == 0.0
    assert backoff_s(attempt, base_s=1.0, cap_s=60.0, rand=lambda: 1.0) == ceiling
    assert 0 <= backoff_s(attempt, base_s=1.0, cap_s=60.0, rand=lambda: 0.37) <= ceiling


def test_retryable_classification() -> None:
    assert http_status_retryable(500) and http_status_retryable(503)
    assert http_status_retryable(429) and http_status_retryable(408)
    assert not http_status_retryable(400)
    assert not http_status_retryable(404)
    assert smtp_code_retryable(421) and smtp_code_retryable(451)
    assert not smtp_code_retryable(550)


def test_a_value_due_reminder_names_the_period() -> None:
    email = render_email(
        facts(
            dedupe_key="staff_turnover:value_due:2026-11-01T00:00:00+07:00",
            condition=Condition.VALUE_DUE,
            severity="info",
            kpi_name="Staff turnover",
            value=None,
        )
    )
    assert email.subject == (
        "[FIRING] Staff turnover has no value for its last period: please enter it"
    )
    line = next(x for x in email.text.splitlines() if x.startswith("Period without a value"))
    assert line.endswith("starting 2026-11-01")
