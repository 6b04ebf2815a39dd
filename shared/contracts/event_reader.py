"""A fast reading of event envelopes for consumers, agreeing with the pydantic contract.

The scorer decodes every event it folds; through ``EventEnvelope`` that was its largest
single cost per event (pydantic builds a full model). ``read_event`` decodes with
msgspec into a lighter ``ReadEvent`` of the same fields, and answers ``None`` whenever it
is not certain to agree with the contract — a form the contract reads leniently (a type
with surrounding spaces, a number as a string, a date as epoch seconds), or one msgspec
reads differently (it rounds sub-microsecond fractions where pydantic truncates). The
caller then asks ``EventEnvelope`` itself, which stays the only authority on validity:
``tests/unit/foundation/test_event_reader.py`` checks that a fast answer always equals the
contract's. ``convert_events`` is the same for ingest, which has the JSON already decoded.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from datetime import datetime
from typing import Annotated, Any, Final, Literal

import msgspec

from shared.contracts.events import EventEnvelope

# Mirrors of the contract's constraints, stricter where the contract is lenient. Its two
# patterns are checked after decoding rather than by msgspec, which runs Python's ``re``
# for each (more than half of a decode): no NUL in the event id is a substring test, and
# the type's pattern is checked once per distinct type.
_EventId = Annotated[str, msgspec.Meta(min_length=1, max_length=128)]
_Instant = Annotated[datetime, msgspec.Meta(tz=True)]
_SubjectId = Annotated[str, msgspec.Meta(max_length=256)]
# Seven or more fractional digits: msgspec rounds them, pydantic truncates them. Anchored
# on the time's seconds so that long float values do not divert events to the contract.
_LONG_FRACTION: Final = re.compile(rb":\d\d\.\d{7}")
_LONG_FRACTION_TEXT: Final = re.compile(r":\d\d\.\d{7}")
# \A and \Z because Python's $ also matches before a trailing newline.
_EVENT_TYPE: Final = re.compile(r"\A[a-z][a-z0-9_]{0,63}\Z")
#: Types seen valid; bounded, because types come from clients.
_KNOWN_TYPES_MAX: Final = 4096
_known_types: set[str] = set()


class ReadEvent(
    msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True, gc=False
):
    """The envelope's fields, as ``EventEnvelope`` has them (same names, values, order).

    In the contract's order, so that ``to_bytes`` writes the document the contract's
    ``to_bytes`` writes: the same fields in the same order with the same values (msgspec
    writes a float's exponent as ``1e16`` where pydantic writes ``1e+16``).

    ``gc=False``: decoded JSON cannot form reference cycles, and an untracked instance
    does not count towards the garbage collector's next young collection.
    """

    schema_version: Literal[1] = 1
    event_id: _EventId
    source: Literal["web", "crm", "email", "support"]
    type: str
    occurred_at: _Instant
    received_at: _Instant
    subject_id: _SubjectId | None = None
    value: float | None = None
    properties: dict[str, Any] = {}
    context: dict[str, Any] = {}

    @classmethod
    def of(cls, event: EventEnvelope) -> ReadEvent:
        return cls(
            event_id=event.event_id,
            source=event.source,
            type=event.type,
            occurred_at=event.occurred_at,
            received_at=event.received_at,
            subject_id=event.subject_id,
            value=event.value,
            properties=event.properties,
            context=event.context,
        )

    def to_bytes(self) -> bytes:
        return _ENCODER.encode(self)


_DECODER: Final = msgspec.json.Decoder(ReadEvent)
# Made once: msgspec reads a list type anew on each call.
_EVENT_LIST: Final = list[ReadEvent]
_ENCODER: Final = msgspec.json.Encoder()


def read_event(raw: bytes) -> ReadEvent | None:
    """The event in ``raw`` when it is plainly valid; None when the contract must decide."""
    if _LONG_FRACTION.search(raw) is not None:
        return None
    try:
        event = _DECODER.decode(raw)
    except (msgspec.ValidationError, msgspec.DecodeError, RecursionError):
        # Nested past the interpreter's recursion limit: the contract's reader, which
        # bounds its depth, refuses it with a ValidationError (a dead letter).
        return None
    return event if _plainly_valid(event) else None


def convert_events(items: Sequence[object]) -> list[ReadEvent] | None:
    """The events of ``items`` (decoded JSON objects) when each is plainly valid, else None.

    The producers' fast path: ingest has the request's JSON already decoded (and the
    server's fields filled in), so msgspec converts the objects rather than bytes. None
    means at least one item needs the contract, which then decides for the whole batch.
    """
    try:
        events = msgspec.convert(items, _EVENT_LIST)
    except (msgspec.ValidationError, RecursionError):
        return None
    for item, event in zip(items, events, strict=True):
        if not isinstance(item, dict):  # then its instants could not be looked at
            return None
        if _long_fraction(item.get("occurred_at")) or _long_fraction(item.get("received_at")):
            return None
        if not _plainly_valid(event):
            return None
    return events


def _long_fraction(instant: object) -> bool:
    return isinstance(instant, str) and _LONG_FRACTION_TEXT.search(instant) is not None


def _plainly_valid(event: ReadEvent) -> bool:
    """The contract's checks the struct's own constraints leave out."""
    value = event.value
    if value is not None and not math.isfinite(value):  # e.g. 1e400; the contract refuses
        return False
    if "\x00" in event.event_id:
        return False
    return event.type in _known_types or _valid_type(event.type)


def _valid_type(event_type: str) -> bool:
    if _EVENT_TYPE.search(event_type) is None:
        return False
    if len(_known_types) >= _KNOWN_TYPES_MAX:
        _known_types.clear()
    _known_types.add(event_type)
    return True


def validate_event(raw: bytes) -> ReadEvent:
    """The event in ``raw`` as the contract reads it; raises pydantic's ValidationError."""
    return ReadEvent.of(EventEnvelope.from_bytes(raw))

