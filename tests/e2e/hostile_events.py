"""Hostile events for the native API, each with what must become of it.

Every event carries at most one defect, so that what ingest must answer for it is
certain: accepted (and then counted by scoring, or refused there as older than the test
KPIs' retention), or refused with a reason naming the field at fault. The expectations
are written from the README's promises, not from the code: they are the test's oracle.

Structures too deep for an encoder, and JSON no encoder writes (``NaN``, ``1e400``, lone
surrogates), travel as placeholders that ``splice`` replaces with raw JSON text.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import orjson

#: The test KPIs' retention (``hostile_consumers.count_kpis``): accepted events older
#: than this are refused by scoring and dead-lettered there (times keep a day's margin).
RETENTION_DAYS = 60
MAX_DEPTH = 32  # ingest's default nesting bound
MAX_EVENT_BYTES = 65_536


@dataclass(frozen=True)
class Fate:
    """What must become of one event."""

    accepted: bool
    names: str = ""  # a refusal's reason mentions this
    counted: bool = True  # accepted: False when older than the retention


ACCEPTED = Fate(True)
TOO_OLD = Fate(True, counted=False)


def refused(names: str) -> Fate:
    return Fate(False, names)


@dataclass
class Hostile:
    """One event as sent: JSON fields, raw JSON for placeholders, and its fate."""

    fields: Any  # usually a dict; anything for "not an object"
    fate: Fate
    defect: str
    raw: dict[str, bytes] = field(default_factory=dict)
    #: A string its dead letter shows (every payload carries it), "" when none does.
    needle: str = ""

    @property
    def event_id(self) -> str | None:
        """The id the event is sent with (None: ingest makes one up)."""
        value = self.fields.get("event_id") if isinstance(self.fields, dict) else None
        return value if isinstance(value, str) and value else None

    @property
    def source(self) -> str | None:
        value = self.fields.get("source") if isinstance(self.fields, dict) else None
        return value if isinstance(value, str) else None


def placeholder(raw: bytes, into: dict[str, bytes]) -> str:
    """A string standing for ``raw`` JSON text in a document encoded later."""
    mark = f"@@raw-{uuid.uuid4().hex}@@"
    into[mark] = raw
    return mark


def splice(document: bytes, raw: dict[str, bytes]) -> bytes:
    for mark, text in raw.items():
        document = document.replace(orjson.dumps(mark), text)
    return document


def nested(depth: int) -> Any:
    """A value nested ``depth`` levels deep (1: ``{"k": "leaf"}``)."""
    value: Any = "leaf"
    for _ in range(depth):
        value = {"k": value}
    return value


def nested_raw(depth: int) -> bytes:
    """``nested(depth)`` as JSON text, for depths no encoder writes."""
    return b'{"k":' * depth + b'"leaf"' + b"}" * depth


def iso(when: datetime, offset: str = "Z") -> str:
    """``when`` written in another UTC offset, e.g. ``-14:00`` (same instant)."""
    if offset == "Z":
        return when.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    sign = 1 if offset[0] == "+" else -1
    hours, minutes = int(offset[1:3]), int(offset[4:6])
    shift = sign * timedelta(hours=hours, minutes=minutes)
    return (when + shift).strftime("%Y-%m-%dT%H:%M:%S.%f") + offset


OFFSETS = ("Z", "+00:00", "-14:00", "+14:00", "+05:45", "-09:30")
ODD_TEXT = (
    "ti\u1ebfng Vi\u1ec7t", "\u202eevil", "\U0001f600" * 20, "nul\u0000inside", "\ufeffbom",
    "' OR 1=1 --", "<script>alert(1)</script>", "\\u0000", "x" * 30_000,
)

Patch = Callable[[dict[str, Any], dict[str, bytes], datetime], Fate]


def _time(value: object, fate: Fate) -> Patch:
    def patch(event: dict[str, Any], raw: dict[str, bytes], now: datetime) -> Fate:
        event["occurred_at"] = value(now) if callable(value) else value
        return fate
    return patch


def _set(name: str, value: object, fate: Fate) -> Patch:
    def patch(event: dict[str, Any], raw: dict[str, bytes], now: datetime) -> Fate:
        event[name] = value
        return fate
    return patch


def _raw(name: str, text: bytes, fate: Fate) -> Patch:
    def patch(event: dict[str, Any], raw: dict[str, bytes], now: datetime) -> Fate:
        event[name] = placeholder(text, raw)
        return fate
    return patch


def _id_of_length(length: int, fate: Fate) -> Patch:
    def patch(event: dict[str, Any], raw: dict[str, bytes], now: datetime) -> Fate:
        # Characters beyond ASCII: the bound is in characters, the column too.
        event["event_id"] = (event["event_id"] + "-\u00e9\U0001f600" * length)[:length]
        return fate
    return patch


def _drop(name: str, fate: Fate) -> Patch:
    def patch(event: dict[str, Any], raw: dict[str, bytes], now: datetime) -> Fate:
        event.pop(name, None)
        return fate
    return patch


def _id_suffix(suffix: str, fate: Fate) -> Patch:
    def patch(event: dict[str, Any], raw: dict[str, bytes], now: datetime) -> Fate:
        event["event_id"] += suffix
        return fate
    return patch


def _retyped(make: Callable[[str], str], fate: Fate) -> Patch:
    def patch(event: dict[str, Any], raw: dict[str, bytes], now: datetime) -> Fate:
        event["type"] = make(event["type"])
        return fate
    return patch


def _days_ago(days: float) -> Callable[[datetime], str]:
    return lambda now: iso(now - timedelta(days=days), "-09:30")


def _hours_ahead(hours: float) -> Callable[[datetime], str]:
    return lambda now: iso(now + timedelta(hours=hours), "+14:00")


#: The defects an event may carry, by name, with the fate each must meet.
DEFECTS: dict[str, Patch] = {
    "none": _set("properties", {"plain": True}, ACCEPTED),
    "no_time": _drop("occurred_at", ACCEPTED),
    "23h_ahead": _time(_hours_ahead(23), ACCEPTED),
    "25h_ahead": _time(_hours_ahead(25), refused("occurred_at")),
    "year_9999": _time("9999-12-31T23:59:59-14:00", refused("occurred_at")),
    # 2000-01-01T13:59:59Z: inside ingest's bound, far outside the retention.
    "year_1999_local": _time("1999-12-31T23:59:59-14:00", TOO_OLD),
    "before_2000": _time("2000-01-01T00:00:00+14:00", refused("occurred_at")),
    "year_1": _time("0001-01-01T00:00:00+14:00", refused("occurred_at")),
    "naive_time": _time("2026-06-01T00:00:00", refused("occurred_at")),
    "no_such_day": _time("2026-02-30T00:00:00Z", refused("occurred_at")),
    "digits_time": _time("9" * 5000, refused("occurred_at")),
    "old_inside": _time(_days_ago(RETENTION_DAYS - 1), ACCEPTED),
    "old_outside": _time(_days_ago(RETENTION_DAYS + 1), TOO_OLD),
    "id_128": _id_of_length(128, ACCEPTED),
    "id_129": _id_of_length(129, refused("event_id")),
    "id_huge": _id_of_length(20_000, refused("event_id")),
    "id_nul": _id_suffix("\u0000", refused("event_id")),
    "id_empty": _set("event_id", "", ACCEPTED),
    "id_number": _set("event_id", 12345, refused("event_id")),
    "value_max": _set("value", 1.7976931348623157e308, ACCEPTED),
    "value_text": _set("value", "12.5", ACCEPTED),
    "value_nan_text": _set("value", "NaN", refused("value")),
    "depth_32": _set("properties", nested(MAX_DEPTH), ACCEPTED),
    "depth_33": _set("properties", nested(MAX_DEPTH + 1), refused("properties: nested deeper")),
    "depth_300": _raw("properties", nested_raw(300), refused("properties: nested deeper")),
    "context_depth_40": _set("context", nested(40), refused("context: nested deeper")),
    "type_spaced": _retyped(lambda t: f"  {t} ", ACCEPTED),
    "type_upper": _retyped(str.upper, refused("type")),
    "type_long": _retyped(lambda t: (t + "_x" * 40)[:65], refused("type")),
    "no_type": _drop("type", refused("type")),
    "subject_256": _set("subject_id", "\u00e9" * 256, ACCEPTED),
    "subject_257": _set("subject_id", "s" * 257, refused("subject_id")),
    "odd_text": _set("properties", {text[:8]: text for text in ODD_TEXT}, ACCEPTED),
    "unknown_field": _set("unexpected_field", 1, refused("unexpected_field")),
    "oversized": _set("properties", {"blob": "b" * (MAX_EVENT_BYTES + 10)},
                      refused("larger than")),
}

#: Defects that make a request of this event alone refused as a whole (413).
TOO_LARGE_ALONE = {"oversized"}


def hostile_event(
    *, tag: str, number: int, source: str | None, defect: str, now: datetime
) -> Hostile:
    """An event of the test's type with ``defect`` (a key of ``DEFECTS``)."""
    fields: dict[str, Any] = {
        "event_id": f"{tag}-n{number}",
        "type": event_type(tag),
        "occurred_at": iso(now - timedelta(minutes=number % 600), OFFSETS[number % 6]),
        # The number's tag twice: whatever one defect replaces, its letter still shows it.
        "subject_id": f"{tag}-n{number}",
        "value": 1.5,
    }
    if source is not None:
        fields["source"] = source
    raw: dict[str, bytes] = {}
    fate = DEFECTS[defect](fields, raw, now)
    return Hostile(fields, fate, defect, raw, needle=f"{tag}-n{number}")


def not_an_object(value: Any) -> Hostile:
    return Hostile(value, refused("event"), "not_an_object")


def event_type(tag: str) -> str:
    """The type of the test's native events (and of Standard Webhooks deliveries)."""
    return f"hx_{tag}"


def body_of(document: Any, events: list[Hostile]) -> bytes:
    """``document`` as JSON with every event's raw parts spliced in."""
    raw: dict[str, bytes] = {}
    for event in events:
        raw.update(event.raw)
    return splice(orjson.dumps(document), raw)
