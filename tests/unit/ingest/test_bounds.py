"""Event-time and nesting bounds: refused per event, with the field and the bound named."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pydantic import ValidationError

from services.ingest.domain import segment
from services.ingest.domain import webhooks as mapping
from services.ingest.domain.bounds import Bounds, depth_problem, too_deep
from services.ingest.domain.envelopes import UNENCODABLE, validate
from shared.contracts.event_reader import read_event, validate_event

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
BOUNDS = Bounds()


def event(**fields: Any) -> dict[str, Any]:
    return {"event_id": "e-1", "source": "web", "type": "signup", "occurred_at": NOW,
            "received_at": NOW, **fields}


def nested(depth: int) -> dict[str, Any]:
    """A dict ``depth`` levels deep: nested(1) == {"k": 1}."""
    value: Any = 1
    for _ in range(depth):
        value = {"k": value}
    return value  # type: ignore[no-any-return]


def test_the_year_9999_with_a_negative_offset_is_refused_naming_field_and_bound() -> None:
    result = validate([event(occurred_at="9999-12-31T23:59:59-14:00")], bounds=BOUNDS)
    assert result.accepted == []
    (rejection,) = result.rejected
    assert rejection.reason == (
        "occurred_at 9999-12-31T23:59:59-14:00 is more than 24 h in the future"
    )


@pytest.mark.parametrize("occurred_at", [
    NOW + timedelta(hours=24, seconds=1), datetime(1999, 12, 31, 23, 59, 59, tzinfo=UTC),
    "0001-01-01T00:00:00+14:00",
])
def test_times_outside_the_bounds_are_refused(occurred_at: object) -> None:
    result = validate([event(occurred_at=occurred_at)], bounds=BOUNDS)
    assert result.accepted == [] and result.rejected[0].reason.startswith("occurred_at ")


def test_the_lower_bound_is_named() -> None:
    (rejection,) = validate([event(occurred_at="1970-01-01T00:00:00Z")], bounds=BOUNDS).rejected
    assert rejection.reason == (
        "occurred_at 1970-01-01T00:00:00+00:00 is before the earliest accepted "
        "2000-01-01T00:00:00+00:00"
    )


@pytest.mark.parametrize("occurred_at", [
    NOW + timedelta(hours=24), datetime(2000, 1, 1, tzinfo=UTC), NOW - timedelta(days=400),
])
def test_times_within_the_bounds_are_accepted(occurred_at: datetime) -> None:
    assert len(validate([event(occurred_at=occurred_at)], bounds=BOUNDS).accepted) == 1


def test_the_bounds_are_configurable() -> None:
    bounds = Bounds(max_future=timedelta(hours=1), earliest=datetime(2020, 1, 1, tzinfo=UTC))
    late = validate([event(occurred_at=NOW + timedelta(hours=2))], bounds=bounds)
    assert late.rejected[0].reason.endswith("is more than 1 h in the future")
    early = validate([event(occurred_at=datetime(2019, 6, 1, tzinfo=UTC))], bounds=bounds)
    assert "2020-01-01T00:00:00+00:00" in early.rejected[0].reason
    seconds = validate([event(occurred_at=NOW + timedelta(seconds=91))],
                       bounds=Bounds(max_future=timedelta(seconds=90)))
    assert seconds.rejected[0].reason.endswith("is more than 90 s in the future")


def test_the_skew_corrected_segment_time_is_bounded() -> None:
    request = segment.unpack(
        {"batch": [
            {"type": "track", "event": "Signed Up", "messageId": "m1",
             "timestamp": "2026-12-10T00:00:00Z", "sentAt": "2026-12-10T00:00:05Z"},
            {"type": "track", "event": "Signed Up", "messageId": "m2",
             "timestamp": "2026-12-10T00:00:00Z"},
        ], "sentAt": "2026-12-01T12:00:00Z"},
        "batch",
    )
    mapped, indexes, _refused = segment.map_request(request, received_at=NOW, new_id=lambda: "x")
    result = validate(mapped, bounds=BOUNDS, indexes=indexes)
    # Both claim a time nine days ahead. The first was sent 5 s after it happened by a
    # clock nine days fast: corrected, it is 5 s ago. The second, by the batch's sentAt,
    # happened eight and a half days after it was sent: still ahead once corrected.
    assert [i for i, _ in result.accepted] == [0]
    assert result.rejected[0].index == 1
    assert "more than 24 h in the future" in result.rejected[0].reason


def test_webhook_times_are_bounded() -> None:
    events = mapping.map_standard(
        {"type": "invoice.paid", "timestamp": "9999-12-31T23:59:59-14:00"},
        source="crm", msg_id="m", received_at=NOW,
    )
    assert validate(events, bounds=BOUNDS).rejected[0].reason.startswith("occurred_at 9999")


def test_depth_is_measured_without_recursion() -> None:
    assert not too_deep(nested(32), 32)
    assert too_deep(nested(33), 32)
    assert too_deep({"a": [[[]]]}, 3) and not too_deep({"a": [[]]}, 3)
    assert too_deep(nested(200_000), 32)  # far past Python's recursion limit
    assert not too_deep("scalar", 0)


@pytest.mark.parametrize("field", ["properties", "context"])
@pytest.mark.parametrize("depth", [33, 300, 1000, 5000])
def test_deep_properties_or_context_are_refused_naming_field_and_limit(
    field: str, depth: int
) -> None:
    good = event(event_id="good")
    bad = event(event_id="bad", **{field: nested(depth)})
    result = validate([good, bad], bounds=BOUNDS)
    assert [e.event_id for _, e in result.accepted] == ["good"]
    (rejection,) = result.rejected
    assert rejection.index == 1
    assert rejection.reason == f"{field}: nested deeper than the limit of 32 levels"
    assert rejection.raw is UNENCODABLE  # its dead letter carries the request's bytes


def test_the_nesting_limit_is_configurable_and_inclusive() -> None:
    assert len(validate([event(properties=nested(32))], bounds=BOUNDS).accepted) == 1
    shallow = Bounds(max_depth=4)
    assert depth_problem(event(properties=nested(5)), 4) is not None
    assert validate([event(properties=nested(5))], bounds=shallow).rejected


def test_deep_webhook_payloads_are_refused() -> None:
    events = mapping.map_hubspot(
        [{"eventId": 1, "subscriptionType": "contact.creation", "x": nested(500)}],
        received_at=NOW,
    )
    (rejection,) = validate(events, bounds=BOUNDS).rejected
    assert rejection.reason == "properties: nested deeper than the limit of 32 levels"


def test_a_deep_event_read_from_the_log_is_refused_by_the_contract_not_a_crash() -> None:
    # Events published before ingest bounded nesting, or by another producer, still reach
    # the consumers: the fast reader defers to the contract, which refuses them cleanly.
    deep = b'{"k":' * 1000 + b"1" + b"}" * 1000
    raw = (b'{"schema_version":1,"event_id":"e","source":"web","type":"t",'
           b'"occurred_at":"2026-01-01T00:00:00Z","received_at":"2026-01-01T00:00:00Z",'
           b'"properties":' + deep + b"}")
    assert read_event(raw) is None
    with pytest.raises(ValidationError, match="recursion limit"):
        validate_event(raw)
