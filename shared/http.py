"""What every HTTP service has: /healthz, /readyz, /metrics, RED metrics, bounded bodies."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping, Sequence

import orjson
from fastapi import FastAPI
from fastapi.responses import Response
from prometheus_client import CollectorRegistry
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shared.metrics import HttpMetrics, HttpMetricsMiddleware, metrics_endpoint

ReadinessCheck = Callable[[], Awaitable[bool]]
DEFAULT_MAX_BODY_BYTES = 1024 * 1024


class BodyLimitMiddleware:
    """Refuses (413) a body over ``limit`` bytes while it is read, before anything parses it.

    FastAPI reads a JSON body completely before it runs the route's dependencies (the
    admin token check among them), so without this an anonymous client could make any
    service buffer an endless body. The check sits in ``receive``: routes that answer
    without reading the body (a 401 first) keep doing so.
    """

    def __init__(self, app: ASGIApp, *, limit: int) -> None:
        self._app = app
        self._limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        limit = self._limit
        declared = dict(scope["headers"]).get(b"content-length", b"")
        # (More than 18 digits cannot be a sane length, and int() refuses over 4300.)
        too_large = declared.isdigit() and (len(declared) > 18 or int(declared) > limit)
        received = 0

        async def bounded() -> Message:
            nonlocal received
            if too_large:
                raise HTTPException(413, f"request body exceeds the limit of {limit} bytes")
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise HTTPException(413, f"request body exceeds the limit of {limit} bytes")
            return message

        await self._app(scope, bounded, send)


def install_common(
    app: FastAPI,
    *,
    service: str,
    registry: CollectorRegistry,
    http_metrics: HttpMetrics,
    readiness: Mapping[str, ReadinessCheck],
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    metrics_tokens: Sequence[str] = (),
) -> None:
    """Add health, readiness and metrics endpoints plus request metrics to ``app``."""
    app.add_middleware(BodyLimitMiddleware, limit=max_body_bytes)
    # Added last, so outermost: the 413s above are counted too.
    app.add_middleware(HttpMetricsMiddleware, metrics=http_metrics, service=service)

    @app.get("/healthz", tags=["ops"], summary="Liveness: the process answers")
    async def healthz() -> dict[str, str]:
        return {"status": "ok", "service": service}

    @app.get(
        "/readyz",
        tags=["ops"],
        summary="Readiness: every dependency (Kafka, database) is reachable",
        responses={503: {"description": "A dependency is unreachable"}},
    )
    async def readyz() -> Response:
        names = list(readiness)
        results = await asyncio.gather(*(readiness[name]() for name in names))
        checks = {
            name: "ok" if ok else "unreachable"
            for name, ok in zip(names, results, strict=True)
        }
        ready = all(results)
        body = {"status": "ready" if ready else "unready", "service": service, "checks": checks}
        return Response(
            orjson.dumps(body), status_code=200 if ready else 503, media_type="application/json"
        )

    app.add_route("/metrics", metrics_endpoint(registry, metrics_tokens), include_in_schema=False)
