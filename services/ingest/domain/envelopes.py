"""Validation of incoming events into envelopes, answering per event.

A batch is first converted by msgspec (``convert_events``, the fast path when every event
is plainly valid, several times cheaper than pydantic); when it declines, the contract
(``EventEnvelope``, one ``TypeAdapter`` call) decides, the errors are grouped by index and
the valid rest validated once more. Per-event reasons name the offending field, e.g.
``type: …``. Either way the accepted events are ``ReadEvent``s, whose JSON is the
contract's document (same fields, order and values).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from pydantic import TypeAdapter, ValidationError

from services.ingest.domain.bounds import Bounds, depth_problem, time_problem
from shared.contracts.event_reader import ReadEvent, convert_events
from shared.contracts.events import EventEnvelope

_ENVELOPES: TypeAdapter[list[EventEnvelope]] = TypeAdapter(list[EventEnvelope])


class SchemaError(ValueError):
    """The request body as a whole has the wrong shape (not one event's problem)."""


class SourceMismatch(Exception):
    """An event claims a source the write key was not issued for."""

    def __init__(self, index: int, claimed: object, allowed: str) -> None:
        super().__init__(f"event {index} has source {claimed!r} but the key is for {allowed!r}")
        self.index = index


#: A rejection's ``raw`` when the item must not be encoded again: its dead letter
#: carries the request's own bytes instead.
UNENCODABLE: Final = object()


@dataclass(frozen=True, slots=True)
class Rejection:
    index: int
    reason: str
    raw: object
    #: The event's id when ``raw`` does not show it (the dead letter's key).
    event_id: str | None = None


@dataclass(frozen=True, slots=True)
class Validated:
    accepted: list[tuple[int, ReadEvent]]
    rejected: list[Rejection]


def unpack_native(payload: object) -> list[Any]:
    """One envelope, ``{"batch": [...]}`` or a JSON array → the list of items."""
    if isinstance(payload, list):
        return payload
    if isinstance(payload, dict):
        if "batch" in payload:
            batch = payload["batch"]
            if not isinstance(batch, list):
                raise SchemaError("batch: must be a list of events")
            return batch
        return [payload]
    raise SchemaError("body: must be an event object, a list of events or {\"batch\": [...]}")


def prepare_native(
    items: Sequence[Any],
    *,
    source: str,
    received_at: datetime,
    new_id: Callable[[], str],
) -> None:
    """Fill what the server owns, in place: ids when absent, source, received_at.

    ``received_at`` is always the server's clock (a client's value is overwritten), and
    an event without ``occurred_at`` happened when it arrived.
    """
    for index, item in enumerate(items):
        if not isinstance(item, dict):
            continue  # validation reports it with its index
        claimed = item.get("source")
        if claimed is None:
            item["source"] = source
        elif claimed != source:
            raise SourceMismatch(index, claimed, source)
        if not item.get("event_id"):
            item["event_id"] = new_id()
        item["received_at"] = received_at
        if item.get("occurred_at") is None:
            item["occurred_at"] = received_at


def validate(
    items: Sequence[Any], *, bounds: Bounds, indexes: Sequence[int] | None = None
) -> Validated:
    """Envelopes for the valid items, reasons for the others.

    ``indexes`` gives each item's position in the request when some were set aside
    before validation (e.g. Segment messages that could not be mapped). Nesting is
    measured before the validators see an item (they recurse), the event time after.
    """
    where: Sequence[int] = indexes if indexes is not None else range(len(items))
    problems = [depth_problem(item, bounds.max_depth) for item in items]
    too_deep = [
        # Not the item itself: a structure this deep may not encode again.
        Rejection(position, problem, UNENCODABLE, _event_id(item))
        for position, item, problem in zip(where, items, problems, strict=True)
        if problem is not None
    ]
    if too_deep:
        kept = [i for i, problem in enumerate(problems) if problem is None]
        items, where = [items[i] for i in kept], [where[i] for i in kept]
    checked = _validate(items, where)
    accepted: list[tuple[int, ReadEvent]] = []
    rejected = checked.rejected + too_deep
    for position, event in checked.accepted:
        problem = time_problem(event.occurred_at, event.received_at, bounds)
        if problem is None:
            accepted.append((position, event))
        else:
            rejected.append(Rejection(position, problem, event.to_bytes(), event.event_id))
    if len(rejected) != len(checked.rejected):
        rejected.sort(key=lambda r: r.index)
        return Validated(accepted, rejected)
    return checked


def _event_id(item: object) -> str | None:
    event_id = item.get("event_id") if isinstance(item, dict) else None
    return event_id if isinstance(event_id, str) else None


def _validate(items: Sequence[Any], where: Sequence[int]) -> Validated:
    fast = convert_events(items)
    if fast is not None:
        return Validated(accepted=list(zip(where, fast, strict=True)), rejected=[])
    try:
        envelopes = _ENVELOPES.validate_python(items)
    except ValidationError as exc:
        reasons: dict[int, list[str]] = {}
        for error in exc.errors(include_url=False, include_input=False):
            loc = error["loc"]
            position = int(loc[0])
            field = ".".join(str(part) for part in loc[1:]) or "event"
            reasons.setdefault(position, []).append(f"{field}: {error['msg']}")
        good = [i for i in range(len(items)) if i not in reasons]
        valid = _ENVELOPES.validate_python([items[i] for i in good]) if good else []
        return Validated(
            accepted=[(where[i], ReadEvent.of(env)) for i, env in zip(good, valid, strict=True)],
            rejected=[
                Rejection(where[i], "; ".join(reasons[i]), items[i]) for i in sorted(reasons)
            ],
        )
    return Validated(
        accepted=[(i, ReadEvent.of(env)) for i, env in zip(where, envelopes, strict=True)],
        rejected=[],
    )


@dataclass(frozen=True, slots=True)
class Encoded:
    """The accepted events' ids and JSON (in request order) and every rejection by index."""

    ids: list[str]
    values: list[bytes]
    rejected: list[Rejection]


def encode(validated: Validated, *, max_event_bytes: int) -> Encoded:
    """Serialise the accepted envelopes; one over the per-event limit is rejected.

    Ids and values come as two flat lists, not one pair per event: this runs once per
    accepted event, and the records and the answer each need only one of the two.
    """
    envelopes = [envelope for _, envelope in validated.accepted]
    values = [envelope.to_bytes() for envelope in envelopes]
    if not values or max(map(len, values)) <= max_event_bytes:  # the common case
        rejected = sorted(validated.rejected, key=lambda r: r.index)
        return Encoded([envelope.event_id for envelope in envelopes], values, rejected)
    ids: list[str] = []
    kept: list[bytes] = []
    rejected = list(validated.rejected)
    for (index, envelope), value in zip(validated.accepted, values, strict=True):
        if len(value) > max_event_bytes:
            rejected.append(
                Rejection(index, f"event: larger than the {max_event_bytes}-byte limit", value)
            )
            continue
        ids.append(envelope.event_id)
        kept.append(value)
    rejected.sort(key=lambda r: r.index)
    return Encoded(ids, kept, rejected)
