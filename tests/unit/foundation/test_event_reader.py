"""The fast envelope reading never disagrees with the contract, and is really taken."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from shared.contracts.event_reader import ReadEvent, convert_events, read_event, validate_event
from shared.contracts.events import EventEnvelope

NOW = datetime(2026, 11, 27, 1, 2, 3, 456789, tzinfo=UTC)
_BASE = (
    '"event_id":"a","source":"web","type":"signup","received_at":"2026-11-27T01:02:03Z"'
)


def _canonical(**overrides: Any) -> EventEnvelope:
    fields: dict[str, Any] = {
        "event_id": "evt-1",
        "source": "support",
        "type": "ticket_resolved",
        "occurred_at": NOW - timedelta(hours=2),
        "received_at": NOW,
        "subject_id": "user-7",
        "value": 12.5,
        "properties": {"hours": 3, "channel": "email", "vip": True, "tags": ["a"]},
        "context": {"ip": "10.0.0.1"},
    }
    return EventEnvelope.model_validate({**fields, **overrides})


def _contract(raw: bytes) -> ReadEvent | None:
    try:
        return ReadEvent.of(EventEnvelope.from_bytes(raw))
    except ValidationError:
        return None


@pytest.mark.parametrize(
    "event",
    [
        _canonical(),
        _canonical(value=None, subject_id=None, properties={}, context={}),
        _canonical(occurred_at=datetime(2026, 3, 29, 1, 30, tzinfo=timezone(timedelta(hours=2)))),
        _canonical(value=7),
    ],
)
def test_what_ingest_writes_is_read_fast_and_the_same(event: EventEnvelope) -> None:
    for raw in (event.to_bytes(), EventEnvelope.__pydantic_serializer__.to_json(event)):
        fast = read_event(raw)
        assert fast is not None, raw
        assert fast == ReadEvent.of(event)
        assert fast.occurred_at.timestamp() == event.occurred_at.timestamp()


@pytest.mark.parametrize(
    "tail",
    [
        '"type":" signup "',  # the contract strips whitespace
        '"type":"signup\\n"',
        '"occurred_at":1764205323',  # epoch seconds
        '"value":"3.5"',
        '"value":true',  # the contract reads 1.0
        '"schema_version":true',
        '"occurred_at":"2026-11-27T01:02:03.1234567Z"',  # pydantic truncates, msgspec rounds
    ],
)
def test_lenient_forms_are_left_to_the_contract(tail: str) -> None:
    raw = ("{" + _BASE + ',"occurred_at":"2026-11-27T01:02:03Z",' + tail + "}").encode()
    raw = orjson.dumps(orjson.loads(raw))  # the last duplicate key wins
    assert read_event(raw) is None
    decided = _contract(raw)
    assert decided is not None
    assert validate_event(raw) == decided


@pytest.mark.parametrize(
    "tail",
    [
        '"extra":1',
        '"source":"fax"',
        '"type":"Signup"',
        '"event_id":""',
        '"event_id":"a\\u0000b"',
        '"subject_id":7',
        '"properties":[]',
        '"context":"x"',
        '"schema_version":2',
        '"value":1e400',
        '"occurred_at":"2026-11-27T01:02:03"',  # no offset: not an instant
        '"occurred_at":"2026-13-27T01:02:03Z"',
        '"received_at":null',
    ],
)
def test_invalid_envelopes_are_never_read(tail: str) -> None:
    raw = ("{" + _BASE + ',"occurred_at":"2026-11-27T01:02:03Z",' + tail + "}").encode()
    assert read_event(raw) is None
    assert _contract(raw) is None
    with pytest.raises(ValidationError):
        validate_event(raw)


_SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**63), 2**63 - 1),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=8),
)
_DATETIMES = st.datetimes(
    min_value=datetime(1, 1, 2),
    max_value=datetime(9999, 12, 30),
    timezones=st.sampled_from([UTC, timezone(timedelta(hours=-3, minutes=-30))]),
).map(datetime.isoformat)
_ODD_INSTANTS = st.from_regex(
    r"\A\d{4}-\d\d-\d\d[Tt ]\d\d:\d\d:\d\d(\.\d{1,9})?([Zz]|[+-]\d\d:\d\d(:\d\d)?)?\Z"
)
_MAPS = st.dictionaries(st.text(max_size=5), _SCALARS | st.lists(_SCALARS, max_size=2), max_size=3)
# Per field: (a valid value, anything a producer might send instead).
_FIELDS: dict[str, tuple[st.SearchStrategy[Any], st.SearchStrategy[Any]]] = {
    "schema_version": (st.just(1), _SCALARS),
    "event_id": (st.text(min_size=1, max_size=128), st.text(max_size=130) | _SCALARS),
    "source": (
        st.sampled_from(["web", "crm", "email", "support"]),
        st.sampled_from(["WEB", " web", "fax"]) | _SCALARS,
    ),
    "type": (
        st.from_regex(r"\A[a-z][a-z0-9_]{0,63}\Z"),
        st.from_regex(r"\A\s?[a-zA-Z][a-z0-9_]{0,65}\s?\Z") | _SCALARS,
    ),
    "occurred_at": (_DATETIMES, _ODD_INSTANTS | _SCALARS),
    "received_at": (_DATETIMES, _ODD_INSTANTS | _SCALARS),
    "subject_id": (st.none() | st.text(max_size=256), st.text(max_size=260) | _SCALARS),
    "value": (st.none() | st.floats(allow_nan=False, allow_infinity=False), _SCALARS),
    "properties": (_MAPS, _SCALARS),
    "context": (_MAPS, _SCALARS),
    "surprise": (_SCALARS, _SCALARS),
}


@st.composite
def _objects(draw: st.DrawFn) -> dict[str, Any]:
    doc: dict[str, Any] = {}
    for name, (valid, anything) in _FIELDS.items():
        roll = draw(st.integers(0, 19))
        if name == "surprise":
            if roll == 0:
                doc[name] = draw(anything)
        elif roll < 17:
            doc[name] = draw(valid)
        elif roll < 19:
            doc[name] = draw(anything)
        # else: the field is left out
    return doc


def _documents() -> st.SearchStrategy[bytes]:
    return _objects().map(orjson.dumps)


@settings(max_examples=800, deadline=None)
@given(_documents())
def test_a_fast_answer_always_equals_the_contracts(raw: bytes) -> None:
    fast = read_event(raw)
    if fast is not None:
        assert fast == _contract(raw)


def _same_document(ours: bytes, contracts: bytes) -> bool:
    """The same JSON: fields, their order and values (``1e16`` and ``1e+16`` are equal)."""
    mine, theirs = orjson.loads(ours), orjson.loads(contracts)
    return bool(mine == theirs and list(mine) == list(theirs))


def _contract_of(item: object) -> ReadEvent | None:
    try:
        return ReadEvent.of(EventEnvelope.model_validate(item))
    except ValidationError:
        return None


# Ingest converts decoded JSON with the server's received_at, a datetime, filled in.
_SERVER_TIMES = st.datetimes(
    min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30), timezones=st.just(UTC)
)


@settings(max_examples=800, deadline=None)
@given(st.lists(_objects(), min_size=1, max_size=3), _SERVER_TIMES | _DATETIMES)
def test_converted_objects_equal_the_contracts_reading_and_bytes(
    items: list[dict[str, Any]], received_at: datetime | str
) -> None:
    items = [{**orjson.loads(orjson.dumps(item)), "received_at": received_at} for item in items]
    fast = convert_events(items)
    if fast is None:
        return
    for item, event in zip(items, fast, strict=True):
        contract = _contract_of(item)
        assert event == contract
        assert _same_document(event.to_bytes(), EventEnvelope.model_validate(item).to_bytes())


def test_conversion_is_taken_and_declines_what_the_contract_reads_leniently() -> None:
    item = orjson.loads(_canonical().to_bytes())
    assert convert_events([item]) == [ReadEvent.of(_canonical())]
    for lenient in (
        {"type": " signup "},
        {"value": "3.5"},
        {"value": True},
        {"occurred_at": 1764205323},
        {"occurred_at": "2026-11-27T01:02:03.1234567Z"},
        {"received_at": "2026-11-27T01:02:03.9999999+01:00"},
    ):
        assert convert_events([item, {**item, **lenient}]) is None, lenient
        assert _contract_of({**item, **lenient}) is not None, lenient
    assert convert_events([item, "not an object"]) is None
