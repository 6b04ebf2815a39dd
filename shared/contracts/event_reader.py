"""A fast reading of event envelopes for consumers, agreeing with the pydantic contract.

The scorer decodes every event it folds; through ``EventEnvelope`` that was its largest
single cost per event (pydantic builds a full model). ``read_event`` decodes with
msgspec into a lighter ``ReadEvent``, a struct derived from the contract's own fields
and constraints (one definition: ``EventEnvelope``), and answers ``None`` whenever it
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
from collections.abc import Callable, Sequence
from datetime import datetime
from types import UnionType
from typing import (
    TYPE_CHECKING,
    Annotated,
    Any,
    Final,
    Literal,
    Union,
    cast,
    get_args,
    get_origin,
)

import msgspec
from pydantic import AwareDatetime, StringConstraints
from pydantic.types import AllowInfNan
from pydantic_core import PydanticUndefined

from shared.contracts.events import EventEnvelope

# Seven or more fractional digits: msgspec rounds them, pydantic truncates them. Anchored
# on the time's seconds so that long float values do not divert events to the contract.
_LONG_FRACTION: Final = re.compile(rb":\d\d\.\d{7}")
_LONG_FRACTION_TEXT: Final = re.compile(r":\d\d\.\d{7}")


class _Checks:
    """The contract's constraints msgspec does not check itself, run after decoding:
    patterns (msgspec would run Python's ``re`` inside every decode) and finite floats."""

    def __init__(self) -> None:
        self.patterns: list[tuple[str, re.Pattern[str]]] = []
        self.finite: list[str] = []

    def __call__(self, event: object) -> bool:
        for name, pattern in self.patterns:
            value = getattr(event, name)
            if value is not None and pattern.search(value) is None:
                return False
        for name in self.finite:
            number = getattr(event, name)
            if number is not None and not math.isfinite(number):  # 1e400; the contract refuses
                return False
        return True


def _python_pattern(pattern: str) -> re.Pattern[str]:
    # The contract's patterns run in pydantic-core's regex engine, where ``$`` is the very
    # end; in Python's it also matches before a final newline, so anchor with \A and \Z.
    if pattern.startswith("^"):
        pattern = "\\A" + pattern[1:]
    if pattern.endswith("$"):
        pattern = pattern[:-1] + "\\Z"
    return re.compile(pattern)


def _translate(name: str, annotation: Any, metadata: list[Any], checks: _Checks) -> Any:
    """The msgspec type of one field of the contract (constraints as ``msgspec.Meta`` or
    as post-decoding checks). A type not handled here fails at import, so a change of
    the contract can never leave the reader silently behind."""
    origin = get_origin(annotation)
    if origin is Annotated:
        base, *more = get_args(annotation)
        return _translate(name, base, [*metadata, *more], checks)
    if origin in (Union, UnionType):
        args = [arg for arg in get_args(annotation) if arg is not type(None)]
        if len(args) == 1 and len(get_args(annotation)) == 2:
            return _translate(name, args[0], metadata, checks) | None
    if origin is Literal or (origin is dict and get_args(annotation)[0] is str):
        return annotation
    if annotation is AwareDatetime:
        return Annotated[datetime, msgspec.Meta(tz=True)]
    if annotation is float:
        if any(isinstance(m, AllowInfNan) and not m.allow_inf_nan for m in metadata):
            checks.finite.append(name)
        return float
    if annotation is str:
        return _string(name, metadata, checks)
    raise TypeError(f"event contract field {name!r}: the fast reader cannot read {annotation!r}")


def _string(name: str, metadata: list[Any], checks: _Checks) -> Any:
    low: int | None = None
    high: int | None = None
    for constraint in metadata:
        if not isinstance(constraint, StringConstraints):
            raise TypeError(f"event contract field {name!r}: unknown {constraint!r}")
        low = constraint.min_length if constraint.min_length is not None else low
        high = constraint.max_length if constraint.max_length is not None else high
        if constraint.pattern is not None:
            checks.patterns.append((name, _python_pattern(str(constraint.pattern))))
    if low is None and high is None:
        return str
    return Annotated[str, msgspec.Meta(min_length=low, max_length=high)]


def _derive() -> tuple[type[msgspec.Struct], _Checks]:
    """``ReadEvent``: the contract's fields, in its order, as a msgspec struct.

    In the contract's order, so that ``to_bytes`` writes the document the contract's
    ``to_bytes`` writes: the same fields in the same order with the same values (msgspec
    writes a float's exponent as ``1e16`` where pydantic writes ``1e+16``). ``gc=False``:
    decoded JSON cannot form reference cycles, and an untracked instance does not count
    towards the garbage collector's next young collection.
    """
    checks = _Checks()
    fields: list[tuple[str, Any, Any]] = []
    for name, info in EventEnvelope.model_fields.items():
        kind = _translate(name, info.annotation, list(info.metadata), checks)
        if info.default_factory is not None:
            factory = cast(Callable[[], Any], info.default_factory)
            fields.append((name, kind, msgspec.field(default_factory=factory)))
        elif info.default is not PydanticUndefined:
            fields.append((name, kind, info.default))
        else:
            fields.append((name, kind, msgspec.NODEFAULT))

    def of(cls: type[msgspec.Struct], event: EventEnvelope) -> msgspec.Struct:
        return cls(**{name: getattr(event, name) for name in EventEnvelope.model_fields})

    def to_bytes(self: msgspec.Struct) -> bytes:
        return _ENCODER.encode(self)

    struct = msgspec.defstruct(
        "ReadEvent",
        fields,
        kw_only=True,
        frozen=True,
        forbid_unknown_fields=True,
        gc=False,
        module=__name__,
        namespace={"of": classmethod(of), "to_bytes": to_bytes},
    )
    return struct, checks


_ENCODER: Final = msgspec.json.Encoder()

if TYPE_CHECKING:

    # For the type checker only: a struct with the envelope's fields (derived from them
    # below). The two bases cannot meet at run time, hence the ignores.
    class ReadEvent(EventEnvelope, msgspec.Struct):  # type: ignore[metaclass,misc]

        @classmethod
        def of(cls, event: EventEnvelope) -> ReadEvent: ...

    _plainly_valid = _Checks()
else:
    ReadEvent, _plainly_valid = _derive()

_DECODER: Final = msgspec.json.Decoder(ReadEvent)
# Made once: msgspec reads a list type anew on each call.
_EVENT_LIST: Final = list[ReadEvent]


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


def validate_event(raw: bytes) -> ReadEvent:
    """The event in ``raw`` as the contract reads it; raises pydantic's ValidationError."""
    return ReadEvent.of(EventEnvelope.from_bytes(raw))

