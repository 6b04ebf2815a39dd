"""Signed webhooks from HubSpot, SendGrid, Mailchimp, Zendesk and Standard Webhooks.

Each request is verified before its body is parsed, mapped to canonical events, and
published once per delivery id: a replay is answered 200 (so the sender stops) with
``"replayed": true`` and is not republished. Rejected events are dead-lettered and the
delivery is remembered, because a provider's retry cannot make them valid; a delivery
with no valid event is answered 422 naming the problems (its retry is then a replay).
Each verifier's failure counts against the sender's address (``auth.throttled``).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from typing import Any
from urllib.parse import parse_qsl

from fastapi import APIRouter
from sqlalchemy.exc import SQLAlchemyError
from starlette.requests import Request
from starlette.responses import Response

from services.ingest.api.answer import nothing_valid, publish, rejections
from services.ingest.api.auth import client_address, throttled
from services.ingest.api.common import ApiError, json_response, parse_json, read_body, unavailable
from services.ingest.api.context import IngestContext, context
from services.ingest.domain import signatures as sig
from services.ingest.domain import webhooks as mapping
from services.ingest.domain.envelopes import SchemaError, validate
from shared.contracts.events import SOURCES

router = APIRouter(prefix="/v1/webhooks", tags=["webhooks"])

_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: {"description": "Signature missing, invalid or stale"},
    404: {"description": "This webhook has no secret configured"},
    413: {"description": "Body over the request limit"},
    422: {"description": "No valid event in the delivery; each rejection names the field"},
    429: {"description": "Too many failed signatures from this address; see Retry-After"},
    503: {"description": "Kafka or the database unreachable; retry"},
}


def _configured(
    ctx: IngestContext, request: Request, secrets: Sequence[object], provider: str
) -> None:
    """404 when unconfigured; 429 when this address sent too many bad signatures lately
    (before its body is read or any signature computed)."""
    if not secrets:
        raise ApiError(404, "not_configured", f"{provider} webhooks are not configured")
    throttled(ctx, client_address(request), "webhook deliveries with bad signatures")


def _check(ctx: IngestContext, request: Request, verdict: sig.Verdict, provider: str) -> None:
    if verdict is not sig.Verdict.OK:
        ctx.failures.failed(client_address(request))
        raise ApiError(401, "bad_signature", f"{provider} webhook refused: {verdict.value}")


def _digest(*parts: bytes) -> str:
    return hashlib.sha256(b"\x00".join(parts)).hexdigest()


async def _deliver(
    ctx: IngestContext,
    *,
    provider: str,
    delivery_id: str,
    source: str,
    events: list[dict[str, Any]],
    body: bytes,
) -> Response:
    validated = validate(events, bounds=ctx.bounds)
    retry = ctx.settings.ingest.retry_after_s
    try:
        async with ctx.deliveries.claim(provider, delivery_id, now=ctx.now()) as new:
            if not new:
                return json_response(
                    {
                        "replayed": True,
                        "accepted": [],
                        "rejected": [],
                        "detail": "delivery already received; not republished",
                    }
                )
            outcome = await publish(ctx, source, validated, body=body)
    except (SQLAlchemyError, OSError) as exc:
        raise unavailable(retry, "the database is unreachable") from exc
    if not outcome.accepted:  # dead-lettered and claimed: a retry is answered as a replay
        raise nothing_valid(outcome)
    return json_response(
        {
            "replayed": False,
            "accepted": outcome.accepted,
            "rejected": rejections(outcome.rejected),
        }
    )


async def _body(ctx: IngestContext, request: Request) -> bytes:
    return await read_body(request, limit=ctx.settings.ingest.max_request_bytes)


@router.post("/hubspot", summary="HubSpot webhooks (signature v3)", responses=_RESPONSES)
async def hubspot(request: Request) -> Response:
    ctx = context(request)
    _configured(ctx, request, ctx.secrets.hubspot, "HubSpot")
    body = await _body(ctx, request)
    timestamp = request.headers.get("x-hubspot-request-timestamp")
    _check(
        ctx,
        request,
        sig.verify_hubspot_v3(
            secrets=ctx.secrets.hubspot,
            method=request.method,
            uri=str(request.url),
            body=body,
            timestamp=timestamp,
            signature=request.headers.get("x-hubspot-signature-v3"),
            now=ctx.now(),
            tolerance_s=ctx.settings.ingest.webhook_tolerance_s,
        ),
        "HubSpot",
    )
    events = _parse(lambda: mapping.map_hubspot(parse_json(body), received_at=ctx.now()))
    return await _deliver(
        ctx,
        provider="hubspot",
        delivery_id=_digest(str(timestamp).encode(), body),
        source="crm",
        events=events,
        body=body,
    )


@router.post("/sendgrid", summary="SendGrid Event Webhook (ECDSA)", responses=_RESPONSES)
async def sendgrid(request: Request) -> Response:
    ctx = context(request)
    _configured(ctx, request, ctx.secrets.sendgrid, "SendGrid")
    body = await _body(ctx, request)
    timestamp = request.headers.get("x-twilio-email-event-webhook-timestamp")
    _check(
        ctx,
        request,
        sig.verify_sendgrid(
            keys=ctx.secrets.sendgrid,
            body=body,
            timestamp=timestamp,
            signature=request.headers.get("x-twilio-email-event-webhook-signature"),
            now=ctx.now(),
            tolerance_s=ctx.settings.ingest.webhook_tolerance_s,
        ),
        "SendGrid",
    )
    events = _parse(lambda: mapping.map_sendgrid(parse_json(body), received_at=ctx.now()))
    return await _deliver(
        ctx,
        provider="sendgrid",
        delivery_id=_digest(str(timestamp).encode(), body),
        source="email",
        events=events,
        body=body,
    )


def _mailchimp_secret(ctx: IngestContext, request: Request, secret: str) -> None:
    _configured(ctx, request, ctx.secrets.mailchimp, "Mailchimp")
    verdict = sig.verify_url_secret(secrets=ctx.secrets.mailchimp, given=secret)
    _check(ctx, request, verdict, "Mailchimp")


@router.get("/mailchimp/{secret}", summary="Mailchimp's URL validation", responses=_RESPONSES)
async def mailchimp_validate(request: Request, secret: str) -> Response:
    _mailchimp_secret(context(request), request, secret)
    return json_response({"status": "ok"})


@router.post("/mailchimp/{secret}", summary="Mailchimp list webhooks", responses=_RESPONSES)
async def mailchimp(request: Request, secret: str) -> Response:
    ctx = context(request)
    _mailchimp_secret(ctx, request, secret)
    body = await _body(ctx, request)
    delivery_id = _digest(body)
    try:
        pairs = parse_qsl(body.decode(), keep_blank_values=True, strict_parsing=bool(body))
    except (UnicodeDecodeError, ValueError) as exc:
        raise ApiError(400, "malformed_form", f"malformed form body: {exc}") from exc
    events = _parse(
        lambda: mapping.map_mailchimp(pairs, delivery_id=delivery_id, received_at=ctx.now())
    )
    return await _deliver(
        ctx, provider="mailchimp", delivery_id=delivery_id, source="email", events=events,
        body=body,
    )


@router.post("/zendesk", summary="Zendesk webhooks (HMAC-SHA256)", responses=_RESPONSES)
async def zendesk(request: Request) -> Response:
    ctx = context(request)
    _configured(ctx, request, ctx.secrets.zendesk, "Zendesk")
    body = await _body(ctx, request)
    timestamp = request.headers.get("x-zendesk-webhook-signature-timestamp")
    _check(
        ctx,
        request,
        sig.verify_zendesk(
            secrets=ctx.secrets.zendesk,
            body=body,
            timestamp=timestamp,
            signature=request.headers.get("x-zendesk-webhook-signature"),
            now=ctx.now(),
            tolerance_s=ctx.settings.ingest.webhook_tolerance_s,
        ),
        "Zendesk",
    )
    # What the signature covers, not the invocation id (unsigned): a delivery replayed
    # within the window under a new id is still the same delivery.
    delivery_id = _digest(str(timestamp).encode(), body)
    events = _parse(
        lambda: mapping.map_zendesk(
            parse_json(body), delivery_id=delivery_id, received_at=ctx.now()
        )
    )
    return await _deliver(
        ctx, provider="zendesk", delivery_id=delivery_id, source="support", events=events,
        body=body,
    )


@router.post(
    "/standard/{source}", summary="Standard Webhooks, for any other tool", responses=_RESPONSES
)
async def standard(request: Request, source: str) -> Response:
    ctx = context(request)
    if source not in SOURCES:
        raise ApiError(404, "unknown_source", f"source must be one of {', '.join(SOURCES)}")
    keys = ctx.secrets.standard.get(source, ())
    _configured(ctx, request, keys, f"Standard ({source})")
    body = await _body(ctx, request)
    msg_id = request.headers.get("webhook-id")
    _check(
        ctx,
        request,
        sig.verify_standard(
            keys=keys,
            body=body,
            msg_id=msg_id,
            timestamp=request.headers.get("webhook-timestamp"),
            signature=request.headers.get("webhook-signature"),
            now=ctx.now(),
            tolerance_s=ctx.settings.ingest.webhook_tolerance_s,
        ),
        "Standard",
    )
    assert msg_id is not None  # verified above
    events = _parse(
        lambda: mapping.map_standard(
            parse_json(body), source=source, msg_id=msg_id, received_at=ctx.now()
        )
    )
    return await _deliver(
        ctx, provider=f"standard:{source}", delivery_id=msg_id, source=source, events=events,
        body=body,
    )


def _parse(build: Callable[[], list[dict[str, Any]]]) -> list[dict[str, Any]]:
    try:
        events = build()
    except SchemaError as exc:
        raise ApiError(422, "invalid_body", str(exc)) from exc
    return events
