"""``POST /v1/events``: the native API, one envelope or a batch, answered per event."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from services.ingest.api.answer import publish_and_answer
from services.ingest.api.auth import authenticate, check_rate, client_address, credentials
from services.ingest.api.common import ApiError, parse_json, read_body, too_large
from services.ingest.api.context import context
from services.ingest.api.cors import check_origin
from services.ingest.domain.envelopes import (
    SchemaError,
    SourceMismatch,
    prepare_native,
    unpack_native,
    validate,
)
from shared.contracts.events import EventEnvelope

router = APIRouter(tags=["events"])


def _event_in_schema() -> dict[str, Any]:
    # The envelope minus what the server fills in: the contract stays defined once.
    schema = EventEnvelope.model_json_schema()
    server_filled = {"event_id", "received_at", "source", "occurred_at", "schema_version"}
    schema["required"] = [f for f in schema.get("required", []) if f not in server_filled]
    schema["title"] = "EventIn"
    schema["description"] = (
        "An event envelope. event_id defaults to a new UUID, source to the write key's "
        "source (another source is refused with 403), occurred_at to the arrival time; "
        "received_at is always set by the server."
    )
    return schema


_EVENT_IN = _event_in_schema()
_RESULT = {
    "type": "object",
    "properties": {
        "accepted": {"type": "array", "items": {"type": "string"}},
        "rejected": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {"index": {"type": "integer"}, "reason": {"type": "string"}},
            },
        },
    },
}
_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"description": "Malformed JSON"},
    401: {"description": "Missing, unknown or revoked write key"},
    403: {"description": "The write key belongs to another source"},
    413: {"description": "Body, event or batch over the configured limit"},
    422: {"description": "No valid event; each rejection names the field"},
    429: {"description": "Per-key rate limit exceeded; see Retry-After"},
    503: {"description": "Kafka did not acknowledge; nothing accepted, see Retry-After"},
}


@router.post(
    "/v1/events",
    summary="Send one event or a batch",
    description=(
        "The body is one event, `{\"batch\": [events]}` or a JSON array of events. "
        "Answers 200 only after Kafka acknowledged every accepted event (acks=all). "
        "Invalid events are rejected individually (index and reason) and dead-lettered; "
        "the valid ones are still accepted."
    ),
    responses={200: {"content": {"application/json": {"schema": _RESULT}}}, **_ERRORS},
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {
                    "schema": {
                        "oneOf": [
                            _EVENT_IN,
                            {"type": "array", "items": _EVENT_IN},
                            {
                                "type": "object",
                                "required": ["batch"],
                                "properties": {"batch": {"type": "array", "items": _EVENT_IN}},
                            },
                        ]
                    }
                }
            },
        }
    },
)
async def post_events(request: Request) -> Response:
    ctx = context(request)
    limits = ctx.settings.ingest
    record = await authenticate(
        ctx, credentials(request), source=None, client=client_address(request)
    )
    check_origin(request, record)
    body = await read_body(request, limit=limits.max_request_bytes)
    try:
        items = unpack_native(parse_json(body))
    except SchemaError as exc:
        raise ApiError(422, "invalid_body", str(exc)) from exc
    if len(items) == 1 and len(body) > limits.max_event_bytes:
        raise too_large("event", limits.max_event_bytes)
    if len(items) > limits.max_batch_events:
        raise ApiError(
            413,
            "batch_too_large",
            f"batch of {len(items)} events exceeds the limit of {limits.max_batch_events}",
            extra={"limit_events": limits.max_batch_events},
        )
    if not items:
        raise ApiError(422, "invalid_body", "batch: must contain at least one event")
    check_rate(ctx, record, len(items))
    try:
        prepare_native(items, source=record.source, received_at=ctx.now(), new_id=ctx.new_id)
    except SourceMismatch as exc:
        raise ApiError(403, "wrong_source", str(exc)) from exc
    validated = validate(items, bounds=ctx.bounds)
    return await publish_and_answer(ctx, record.source, validated, body=body)
