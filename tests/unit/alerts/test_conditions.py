"""Expiry, staleness, dedupe keys, routing."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, timedelta

from services.alerts.domain.conditions import (
    Condition,
    dedupe_key,
    expiry_condition,
    is_stale,
    open_key,
)
from services.alerts.domain.routing import Route, routes_for
from services.alerts.repository import KpiLatest
from shared.contracts.kpi_values import Owner

TODAY = date(2026, 3, 10)


def test_expiry_windows() -> None:
    assert expiry_condition(None, TODAY, 14) is None
    assert expiry_condition(TODAY + timedelta(days=30), TODAY, 14) is None
    assert expiry_condition(TODAY + timedelta(days=14), TODAY, 14) is Condition.EXPIRING_SOON
    # The expiry date itself is still valid; the day after it is expired.
    assert expiry_condition(TODAY, TODAY, 14) is Condition.EXPIRING_SOON
    assert expiry_condition(TODAY - timedelta(days=1), TODAY, 14) is Condition.EXPIRED
    assert expiry_condition(TODAY - timedelta(days=1), TODAY, 0) is Condition.EXPIRED


def test_stale_after_two_update_periods() -> None:
    now = datetime(2026, 3, 10, 12, tzinfo=UTC)
    assert not is_stale(None, 60, now)
    assert not is_stale(now - timedelta(seconds=120), 60, now)
    assert is_stale(now - timedelta(seconds=121), 60, now)


def test_dedupe_key_names_one_episode() -> None:
    key = dedupe_key("churn", Condition.BELOW_MINIMUM, "2026-03-10T12:00:00+00:00")
    assert key == "churn:below_minimum:2026-03-10T12:00:00+00:00"
    assert dedupe_key("churn", Condition.EXPIRED, "2026-03-01") != key
    assert open_key("churn", Condition.STALE) == "churn:stale"


def test_routes_cover_every_owner_channel_and_fall_back_to_default() -> None:
    owners = [
        Owner(name="Lan", email="lan@example.com", slack_webhook_url="https://hooks/x"),
        Owner(name="Minh", email="lan@example.com", webhook_url="https://hook/y"),
    ]
    assert routes_for(owners, "ops@example.com") == [
        Route("email", "lan@example.com"),
        Route("slack", "https://hooks/x"),
        Route("webhook", "https://hook/y"),
    ]
    assert routes_for([], "ops@example.com") == [Route("email", "ops@example.com")]
    assert routes_for([Owner(name="nobody")], "ops@example.com") == [
        Route("email", "ops@example.com")
    ]
    # Nobody to reach and no default address: an undeliverable route, never nothing.
    (nobody,) = routes_for([], None)
    assert not nobody.deliverable and "no owner" in str(nobody.reason)


def test_a_kpi_without_any_value_is_stale_from_when_it_was_first_seen() -> None:
    now = datetime(2026, 11, 2, 12, 0, tzinfo=UTC)
    first_seen = now - timedelta(seconds=121)
    never_had_data = KpiLatest(
        kpi_key="k", name="K", value=None, status="no_data", minimum=1, target=2,
        direction="higher_is_better", owners=[], expires_on=None, update_every_s=60,
        leading_in_breach=[], as_of=first_seen, last_seen_at=now, last_value_at=None,
        first_seen_at=first_seen,
    )
    assert never_had_data.fresh_since == first_seen
    assert is_stale(never_had_data.fresh_since, 60, now)
    with_value = replace(never_had_data, last_value_at=now - timedelta(seconds=30))
    assert with_value.fresh_since == now - timedelta(seconds=30)
    assert not is_stale(with_value.fresh_since, 60, now)
