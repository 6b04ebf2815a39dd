"""Segment-compatible tracking API, so unmodified Segment SDKs can point at ingest.

Routes: ``/v1/track``, ``/v1/page``, ``/v1/screen``, ``/v1/identify``, ``/v1/group``,
``/v1/alias`` (one message each) and ``/v1/batch``. The write key (a KPI Pulse key of
source ``web``) comes as Basic auth user name, Bearer, or ``writeKey`` in the body.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from services.ingest.api.answer import publish_and_answer
from services.ingest.api.auth import authenticate, check_rate, client_address, credentials
from services.ingest.api.common import ApiError, parse_json, read_body, too_large
from services.ingest.api.context import context
from services.ingest.api.cors import check_origin
from services.ingest.domain import segment
from services.ingest.domain.envelopes import SchemaError, Validated, validate

router = APIRouter(tags=["segment"])


async def handle(request: Request, kind: str, *, query_key: bool = False) -> Response:
    """One Segment-style request; ``query_key`` also takes ``?writeKey=`` (beacons)."""
    ctx = context(request)
    limits = ctx.settings.ingest
    header_key = credentials(request)
    client = client_address(request)
    if header_key is None and query_key:
        header_key = request.query_params.get("writeKey") or None
    if header_key is not None:  # refuse strangers before reading their body
        check_origin(
            request, await authenticate(ctx, header_key, source=segment.SOURCE, client=client)
        )
    body = await read_body(request, limit=limits.max_request_bytes)
    try:
        unpacked = segment.unpack(parse_json(body), kind)
    except SchemaError as exc:
        raise ApiError(422, "invalid_body", str(exc)) from exc
    record = await authenticate(
        ctx, header_key or unpacked.write_key, source=segment.SOURCE, client=client
    )
    check_origin(request, record)
    count = len(unpacked.messages)
    if kind != "batch" and len(body) > limits.max_event_bytes:
        raise too_large("event", limits.max_event_bytes)
    if count > limits.max_batch_events:
        raise ApiError(
            413,
            "batch_too_large",
            f"batch of {count} messages exceeds the limit of {limits.max_batch_events}",
            extra={"limit_events": limits.max_batch_events},
        )
    if count == 0:
        raise ApiError(422, "invalid_body", "batch: must contain at least one message")
    check_rate(ctx, record, count)
    mapped, indexes, refused = segment.map_request(
        unpacked, received_at=ctx.now(), new_id=ctx.new_id
    )
    checked = validate(mapped, bounds=ctx.bounds, indexes=indexes)
    validated = Validated(checked.accepted, segment.merge_rejections(refused, checked.rejected))
    return await publish_and_answer(
        ctx, record.source, validated, body=body, extra={"success": True}
    )


def _route(kind: str) -> Callable[[Request], Awaitable[Response]]:
    async def endpoint(request: Request) -> Response:
        return await handle(request, kind)

    endpoint.__name__ = f"segment_{kind}"
    return endpoint


for _kind in (*sorted(segment.KINDS), "batch"):
    router.add_api_route(
        f"/v1/{_kind}",
        _route(_kind),
        methods=["POST"],
        summary=f"Segment-compatible {_kind} call",
        description=(
            "Segment HTTP tracking API semantics: messageId → event_id, userId or "
            "anonymousId → subject_id, timestamp corrected for clock skew with sentAt. "
            "Answers {success, accepted, rejected} after Kafka acknowledged."
        ),
    )
