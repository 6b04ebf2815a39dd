"""Native event preparation and per-event validation."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from services.ingest.domain.envelopes import (
    SchemaError,
    SourceMismatch,
    encode,
    prepare_native,
    unpack_native,
    validate,
)

NOW = datetime(2026, 3, 1, tzinfo=UTC)


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
    result = validate(items)
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
    result = validate(items)
    assert [i for i, _ in result.accepted] == [0, 5]
    reasons = {r.index: r.reason for r in result.rejected}
    assert reasons[1].startswith("type:")
    assert reasons[2].startswith("event:")
    assert reasons[3].startswith("value:")
    assert reasons[4].startswith("unknown:")


def test_encode_rejects_oversized_events() -> None:
    items = prepared([{"type": "small"}, {"type": "big", "properties": {"x": "y" * 5000}}])
    encoded, rejected = encode(validate(items), max_event_bytes=2048)
    assert [env.type for env, _ in encoded] == ["small"]
    assert rejected[0].index == 1
    assert "2048-byte limit" in rejected[0].reason
