"""What every HTTP service has: /healthz, /readyz, /metrics and RED metrics."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping

import orjson
from fastapi import FastAPI
from fastapi.responses import Response
from prometheus_client import CollectorRegistry

from shared.metrics import HttpMetrics, HttpMetricsMiddleware, metrics_endpoint

ReadinessCheck = Callable[[], Awaitable[bool]]


def install_common(
    app: FastAPI,
    *,
    service: str,
    registry: CollectorRegistry,
    http_metrics: HttpMetrics,
    readiness: Mapping[str, ReadinessCheck],
) -> None:
    """Add health, readiness and metrics endpoints plus request metrics to ``app``."""
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

    app.add_route("/metrics", metrics_endpoint(registry), include_in_schema=False)
