"""A fast reading of event envelopes for consumers, agreeing with the pydantic contract.

The scorer decodes every event it folds; through ``EventEnvelope`` that was its largest
single cost per event (pydantic builds a full model). ``read_event`` decodes with
msgspec into a lighter ``ReadEvent`` of the same fields, and answers ``None`` whenever it
is not certain to agree with the contract — a form the contract reads leniently (a type
with surrounding spaces, a number as a string, a date as epoch seconds), or one msgspec
reads differently (it rounds sub-microsecond fractions where pydantic truncates). The
caller then asks ``EventEnvelope`` itself, which stays the only authority on validity:
``tests/unit/foundation/test_event_reader.py`` checks that a fast answer always equals the
contract's.
"""

from __future__ import annotations

import math
import re
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
# \A and \Z because Python's $ also matches before a trailing newline.
_EVENT_TYPE: Final = re.compile(r"\A[a-z][a-z0-9_]{0,63}\Z")
#: Types seen valid; bounded, because types come from clients.
_KNOWN_TYPES_MAX: Final = 4096
_known_types: set[str] = set()


class ReadEvent(msgspec.Struct, frozen=True, forbid_unknown_fields=True, gc=False):
    """The envelope's fields, as ``EventEnvelope`` has them (same names and values).

    ``gc=False``: decoded JSON cannot form reference cycles, and an untracked instance
    does not count towards the garbage collector's next young collection.
    """

    event_id: _EventId
    source: Literal["web", "crm", "email", "support"]
    type: str
    occurred_at: _Instant
    received_at: _Instant
    schema_version: Literal[1] = 1
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
        return msgspec.json.encode(self)


_DECODER: Final = msgspec.json.Decoder(ReadEvent)


def read_event(raw: bytes) -> ReadEvent | None:
    """The event in ``raw`` when it is plainly valid; None when the contract must decide."""
    if _LONG_FRACTION.search(raw) is not None:
        return None
    try:
        event = _DECODER.decode(raw)
    except (msgspec.ValidationError, msgspec.DecodeError):
        return None
    value = event.value
    if value is not None and not math.isfinite(value):  # e.g. 1e400; the contract refuses
        return None
    if "\x00" in event.event_id:
        return None
    if event.type not in _known_types and not _valid_type(event.type):
        return None
    return event


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

