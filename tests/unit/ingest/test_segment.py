"""Segment message mapping, including the clock-skew correction."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import pytest

from services.ingest.domain import segment
from services.ingest.domain.bounds import Bounds
from services.ingest.domain.envelopes import SchemaError, validate

RECEIVED = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)
_ids = itertools.count()


def new_id() -> str:
    return f"gen-{next(_ids)}"


def mapped(message: dict[str, object], sent_at: datetime | None = None) -> dict[str, object]:
    return segment.map_message(
        message, sent_at=sent_at, received_at=RECEIVED, batch_context={}, new_id=new_id
    )


def test_clock_skew_formula() -> None:
    # The client's clock runs 1 h fast; the event happened 5 s before it was sent.
    client_ts = datetime(2026, 3, 1, 13, 0, 0, tzinfo=UTC)
    client_sent = client_ts + timedelta(seconds=5)
    assert segment.skew_corrected(client_ts, client_sent, RECEIVED) == RECEIVED - timedelta(
        seconds=5
    )
    assert segment.skew_corrected(client_ts, None, RECEIVED) == client_ts
    assert segment.skew_corrected(None, client_sent, RECEIVED) == RECEIVED


def test_track_maps_every_field() -> None:
    out = mapped(
        {
            "type": "track",
            "event": "Trial Started",
            "userId": "u1",
            "anonymousId": "a1",
            "messageId": "m-1",
            "timestamp": "2026-03-01T13:00:00.000+00:00",
            "sentAt": "2026-03-01T13:00:02.000+00:00",
            "properties": {"plan": "pro", "revenue": 49},
            "context": {"ip": "1.2.3.4"},
        }
    )
    assert out["event_id"] == "m-1"
    assert out["type"] == "trial_started"
    assert out["source"] == "web"
    assert out["subject_id"] == "u1"
    assert out["occurred_at"] == RECEIVED - timedelta(seconds=2)
    assert out["received_at"] == RECEIVED
    assert out["properties"] == {"plan": "pro", "revenue": 49}
    assert out["value"] == 49.0
    assert out["context"] == {"ip": "1.2.3.4"}


def test_batch_level_sent_at_is_used() -> None:
    sent = datetime(2026, 3, 1, 11, 0, 10, tzinfo=UTC)
    out = mapped(
        {"type": "page", "anonymousId": "a1", "timestamp": "2026-03-01T11:00:00Z", "name": "Home"},
        sent_at=sent,
    )
    assert out["type"] == "page_view"
    assert out["subject_id"] == "a1"
    assert out["occurred_at"] == RECEIVED - timedelta(seconds=10)
    assert out["properties"] == {"name": "Home"}


@pytest.mark.parametrize(
    ("message", "expected_type", "expected_properties"),
    [
        ({"type": "screen", "userId": "u", "name": "Main"}, "screen_view", {"name": "Main"}),
        ({"type": "identify", "userId": "u", "traits": {"plan": "x"}}, "identify", {"plan": "x"}),
        # RudderStack sends identify traits only in context.traits.
        (
            {"type": "identify", "userId": "u", "context": {"traits": {"plan": "y"}}},
            "identify",
            {"plan": "y"},
        ),
        (
            {"type": "identify", "userId": "u", "traits": {"plan": "x"},
             "context": {"traits": {"plan": "y"}}},
            "identify",
            {"plan": "x"},
        ),
        (
            {"type": "group", "userId": "u", "groupId": 7, "traits": {"n": 1}},
            "group",
            {"n": 1, "group_id": "7"},
        ),
        ({"type": "alias", "userId": "u", "previousId": "p"}, "alias", {"previous_id": "p"}),
    ],
)
def test_other_calls(
    message: dict[str, object], expected_type: str, expected_properties: dict[str, object]
) -> None:
    out = mapped(message)
    assert out["type"] == expected_type
    assert out["properties"] == expected_properties
    assert out["subject_id"] == "u"
    assert str(out["event_id"]).startswith("gen-")  # no messageId → generated


@pytest.mark.parametrize(
    ("message", "field"),
    [
        ({"type": "track", "userId": "u"}, "event"),
        ({"type": "track", "event": "!!!", "userId": "u"}, "event"),
        ({"type": "launch"}, "type"),
        ({"type": "track", "event": "x", "timestamp": "yesterday"}, "timestamp"),
        ({"type": "track", "event": "x", "properties": [1]}, "properties"),
    ],
)
def test_mapping_errors_name_the_field(message: dict[str, object], field: str) -> None:
    with pytest.raises(segment.MappingError, match=f"^{field}:"):
        mapped(message)


def test_unpack_single_call_takes_type_from_path() -> None:
    req = segment.unpack({"event": "X", "writeKey": "kp_web_abc", "type": "identify"}, "track")
    assert req.write_key == "kp_web_abc"
    assert req.messages[0]["type"] == "track"


def test_unpack_batch_and_errors() -> None:
    payload = {"batch": [{"type": "track"}], "sentAt": "x", "context": {"a": 1}}
    req = segment.unpack(payload, "batch")
    assert req.context == {"a": 1}
    assert req.write_key is None
    with pytest.raises(SchemaError, match="batch"):
        segment.unpack({"batch": {}}, "batch")
    with pytest.raises(SchemaError):
        segment.unpack([1], "track")


def test_map_request_keeps_request_indexes() -> None:
    req = segment.SegmentRequest(
        messages=[
            {"type": "track", "userId": "u"},  # no event name
            {"type": "track", "event": "Signed Up", "userId": "u", "context": {"b": 2}},
            {"type": "track", "event": "A", "userId": "x" * 300},  # subject too long
        ],
        sent_at=None,
        write_key=None,
        context={"a": 1},
    )
    mapped_items, indexes, refused = segment.map_request(req, received_at=RECEIVED, new_id=new_id)
    assert indexes == [1, 2]
    assert [r.index for r in refused] == [0]
    assert mapped_items[0]["context"] == {"a": 1, "b": 2}
    checked = validate(mapped_items, bounds=Bounds(), indexes=indexes)
    assert [i for i, _ in checked.accepted] == [1]
    assert [r.index for r in checked.rejected] == [2]
    assert checked.rejected[0].reason.startswith("subject_id:")
