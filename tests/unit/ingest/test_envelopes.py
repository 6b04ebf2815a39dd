"""Native event preparation and per-event validation."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson
import pytest

from services.ingest.domain.bounds import Bounds
from services.ingest.domain.envelopes import (
    SchemaError,
    SourceMismatch,
    encode,
    prepare_native,
    unpack_native,
    validate,
)
from shared.contracts.event_reader import ReadEvent, convert_events
from shared.contracts.events import EventEnvelope

NOW = datetime(2026, 12, 1, tzinfo=UTC)


def prepared(items: list[Any]) -> list[Any]:
    prepare_native(items, source="web", received_at=NOW, new_id=lambda: "generated")
    return items


def test_unpack_shapes() -> None:
    one = {"type": "x"}
    assert unpack_native(one) == [one]
    assert unpack_native([one, one]) == [one, one]
    assert unpack_native({"batch": [one]}) == [one]
    with pytest.raises(SchemaError, match="batch"):
        unpack_native({"batch": 3})
    with pytest.raises(SchemaError, match="body"):
        unpack_native("text")


def test_server_fills_ids_source_and_times() -> None:
    items = prepared([
        {"type": "signup", "received_at": "1999-01-01T00:00:00Z"},
        {"type": "signup", "event_id": "e-2", "occurred_at": "2026-02-28T00:00:00Z"},
    ])
    result = validate(items, bounds=Bounds())
    assert not result.rejected
    first, second = (env for _, env in result.accepted)
    assert first.event_id == "generated"
    assert first.source == "web"
    assert first.received_at == NOW  # the client's received_at is overwritten
    assert first.occurred_at == NOW
    assert second.event_id == "e-2"
    assert second.occurred_at == datetime(2026, 2, 28, tzinfo=UTC)


def test_other_source_is_refused() -> None:
    with pytest.raises(SourceMismatch) as info:
        prepared([{"type": "a"}, {"type": "a", "source": "crm"}])
    assert info.value.index == 1


def test_partial_validation_names_fields_and_keeps_indexes() -> None:
    items = prepared([
        {"type": "ok_one"},
        {"type": "Bad Type"},
        "not an object",
        {"type": "ok_two", "value": "many"},
        {"type": "ok_three", "unknown": 1},
        {"type": "ok_four", "value": 2.5},
    ])
    result = validate(items, bounds=Bounds())
    assert [i for i, _ in result.accepted] == [0, 5]
    reasons = {r.index: r.reason for r in result.rejected}
    assert reasons[1].startswith("type:")
    assert reasons[2].startswith("event:")
    assert reasons[3].startswith("value:")
    assert reasons[4].startswith("unknown:")


def test_encode_rejects_oversized_events() -> None:
    items = prepared([{"type": "small"}, {"type": "big", "properties": {"x": "y" * 5000}}])
    encoded = encode(validate(items, bounds=Bounds()), max_event_bytes=2048)
    assert encoded.ids == ["generated"]
    assert [orjson.loads(v)["type"] for v in encoded.values] == ["small"]
    assert encoded.rejected[0].index == 1
    assert "2048-byte limit" in encoded.rejected[0].reason


def test_encode_keeps_ids_and_values_in_order_and_rejections_by_index() -> None:
    items = prepared([
        {"type": "first", "event_id": "a"},
        {"type": "Bad Type", "event_id": "b"},
        {"type": "big", "event_id": "c", "properties": {"x": "y" * 5000}},
        {"type": "last", "event_id": "d"},
    ])
    for limit in (2048, 65536):
        encoded = encode(validate(items, bounds=Bounds()), max_event_bytes=limit)
        kept = ["a", "d"] if limit == 2048 else ["a", "c", "d"]
        assert encoded.ids == kept
        assert [orjson.loads(v)["event_id"] for v in encoded.values] == kept
        assert [r.index for r in encoded.rejected] == ([1, 2] if limit == 2048 else [1])


@pytest.mark.parametrize("occurred_at", [
    "2026-11-26T10:00:00Z", "2026-11-26T10:00:00+07:00", "2026-11-26T10:00:00.5-03:30",
    "2026-01-01T00:00:00.000001+00:00",
])
@pytest.mark.parametrize("value", [None, 0, 1.0, -0.0, 1e-7, 123456789.123, 1e21, 2**53 + 1])
@pytest.mark.parametrize("event_type", ["signup", " signup "])  # the fast path; the contract
def test_published_json_is_the_contract_serialisation(
    occurred_at: str, value: float | None, event_type: str
) -> None:
    item = {
        "event_id": "é中😀", "source": "web", "type": event_type, "occurred_at": occurred_at,
        "received_at": NOW, "value": value, "subject_id": "s\n\t\"\\/\x01\x7f",
        "properties": {"n": 2**63 - 1, "neg": -(2**63), "f": 1e-300, "u": "\u2028",
                       "l": [1, "x", None, True, {"k": []}]},
        "context": {"z": 0.000001, "big": 12345678901234567890.0},
    }
    contract = EventEnvelope.model_validate(item)
    ((_, event),) = validate([item], bounds=Bounds()).accepted
    assert event == ReadEvent.of(contract)
    (published,) = encode(validate([item], bounds=Bounds()), max_event_bytes=65536).values
    assert EventEnvelope.from_bytes(published) == contract
    ours, theirs = orjson.loads(published), orjson.loads(contract.to_bytes())
    assert ours == theirs
    assert list(ours) == list(theirs)  # the same order of fields


def test_one_event_the_fast_path_declines_sends_the_batch_to_the_contract() -> None:
    items = prepared([{"type": "a"}, {"type": " b "}])
    assert convert_events(items) is None  # the contract strips the type's spaces
    result = validate(items, bounds=Bounds())
    assert [event.type for _, event in result.accepted] == ["a", "b"]
    assert convert_events(prepared([{"type": "a"}, {"type": "b"}])) is not None
