"""Segment's tracking API (track/page/screen/identify/group/alias/batch) → envelopes.

Unmodified Segment-compatible SDKs (analytics-python, analytics.js, RudderStack) post
here, so the mapping follows Segment's spec: ``messageId`` is the event id,
``userId``/``anonymousId`` the subject, and the event time is clock-skew corrected as
``timestamp = receivedAt - (sentAt - timestamp)`` when the client says when it sent.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from services.ingest.domain.envelopes import Rejection, SchemaError
from services.ingest.domain.naming import as_number, parse_time, snake_case

SOURCE = "web"
KINDS = frozenset({"track", "page", "screen", "identify", "group", "alias"})
_FIXED_TYPES = {
    "page": "page_view",
    "screen": "screen_view",
    "identify": "identify",
    "group": "group",
    "alias": "alias",
}


class MappingError(ValueError):
    """One message cannot become an envelope; the text names the field."""


@dataclass(frozen=True, slots=True)
class SegmentRequest:
    messages: list[Any]
    sent_at: object
    write_key: str | None
    context: dict[str, Any]


def unpack(payload: object, kind: str) -> SegmentRequest:
    """The messages of a request to ``/v1/<kind>`` (``kind`` is "batch" or a type)."""
    if not isinstance(payload, dict):
        raise SchemaError("body: must be a JSON object")
    write_key = payload.get("writeKey")
    key = write_key if isinstance(write_key, str) and write_key else None
    if kind != "batch":
        message = dict(payload)
        message["type"] = kind  # the path names the call, as in Segment's API
        return SegmentRequest([message], payload.get("sentAt"), key, {})
    batch = payload.get("batch")
    if not isinstance(batch, list):
        raise SchemaError("batch: must be a list of messages")
    context = payload.get("context")
    return SegmentRequest(
        batch, payload.get("sentAt"), key, context if isinstance(context, dict) else {}
    )


def skew_corrected(
    timestamp: datetime | None, sent_at: datetime | None, received_at: datetime
) -> datetime:
    """The client's clock may be off; only the interval it measured is trusted."""
    if timestamp is None:
        return received_at
    if sent_at is None:
        return timestamp
    try:
        return received_at - (sent_at - timestamp)
    except OverflowError:  # e.g. year 1 and year 9999: no interval worth trusting
        raise MappingError("timestamp: too far from sentAt to correct the clock skew") from None


def _time_field(message: dict[str, Any], name: str) -> datetime | None:
    raw = message.get(name)
    if raw is None:
        return None
    parsed = parse_time(raw)
    if parsed is None:
        raise MappingError(f"{name}: not a date-time: {raw!r}")
    return parsed


def _id(value: object) -> str | None:
    if value is None or value == "":
        return None
    return value if isinstance(value, str) else str(value)


def _object(message: dict[str, Any], name: str) -> dict[str, Any]:
    value = message.get(name)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise MappingError(f"{name}: must be an object")
    return value


def _type_and_properties(kind: str, message: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    if kind == "track":
        event = message.get("event")
        event_type = snake_case(event) if isinstance(event, str) else ""
        if not event_type:
            raise MappingError("event: a track call needs an event name")
        return event_type, _object(message, "properties")
    if kind in ("page", "screen"):
        properties = dict(_object(message, "properties"))
        for name in ("name", "category"):
            if message.get(name) is not None:
                properties.setdefault(name, message[name])
        return _FIXED_TYPES[kind], properties
    if kind == "identify":
        if message.get("traits") is None:
            # RudderStack's SDKs send identify traits only in context.traits.
            return "identify", _object(_object(message, "context"), "traits")
        return "identify", _object(message, "traits")
    if kind == "group":
        traits = dict(_object(message, "traits"))
        traits["group_id"] = _id(message.get("groupId"))
        return "group", traits
    return "alias", {"previous_id": _id(message.get("previousId"))}


def map_message(
    message: object,
    *,
    sent_at: datetime | None,
    received_at: datetime,
    batch_context: dict[str, Any],
    new_id: Callable[[], str],
) -> dict[str, Any]:
    """One Segment message → the fields of an envelope (validated by the caller)."""
    if not isinstance(message, dict):
        raise MappingError("message: must be an object")
    kind = message.get("type")
    if not isinstance(kind, str) or kind not in KINDS:  # a list is unhashable
        raise MappingError(f"type: must be one of {sorted(KINDS)}, got {kind!r}")
    event_type, properties = _type_and_properties(kind, message)
    own_sent_at = _time_field(message, "sentAt") or sent_at
    timestamp = _time_field(message, "timestamp") or _time_field(message, "originalTimestamp")
    context = _object(message, "context")
    value = None
    if kind == "track":
        value = as_number(properties.get("value"))
        if value is None:
            value = as_number(properties.get("revenue"))
    return {
        "event_id": _id(message.get("messageId")) or new_id(),
        "source": SOURCE,
        "type": event_type,
        "occurred_at": skew_corrected(timestamp, own_sent_at, received_at),
        "received_at": received_at,
        "subject_id": _id(message.get("userId")) or _id(message.get("anonymousId")),
        "value": value,
        "properties": properties,
        "context": {**batch_context, **context} if batch_context else context,
    }


def map_request(
    request: SegmentRequest, *, received_at: datetime, new_id: Callable[[], str]
) -> tuple[list[dict[str, Any]], list[int], list[Rejection]]:
    """Mapped messages with their indexes in the request, and the ones refused."""
    sent_at = parse_time(request.sent_at)
    mapped: list[dict[str, Any]] = []
    indexes: list[int] = []
    rejected: list[Rejection] = []
    for index, message in enumerate(request.messages):
        try:
            mapped.append(
                map_message(
                    message,
                    sent_at=sent_at,
                    received_at=received_at,
                    batch_context=request.context,
                    new_id=new_id,
                )
            )
            indexes.append(index)
        except MappingError as exc:
            rejected.append(Rejection(index, str(exc), message))
    return mapped, indexes, rejected


def merge_rejections(*groups: Sequence[Rejection]) -> list[Rejection]:
    return sorted((r for group in groups for r in group), key=lambda r: r.index)
