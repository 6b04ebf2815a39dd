"""Prometheus helpers: RED metrics for HTTP as pure ASGI middleware, and /metrics.

Each process owns one CollectorRegistry, created in its composition root and passed to
whatever registers metrics, so that tests and the single-process dev mode never collide
on the global default registry.
"""

from __future__ import annotations

import hmac
import time
from collections.abc import Iterator, Sequence
from typing import Any, Final, TypeVar
from weakref import WeakKeyDictionary

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)

M = TypeVar("M", Counter, Gauge, Histogram)

# Metrics that every service declares (HTTP, consumer) are created once per registry,
# so services sharing one registry (``kpipulse dev``) share them, told apart by the
# ``service`` label.
_shared: WeakKeyDictionary[CollectorRegistry, dict[str, Any]] = WeakKeyDictionary()


def shared_metric(
    registry: CollectorRegistry, kind: type[M], name: str, doc: str, labels: list[str], **kw: Any
) -> M:
    known = _shared.setdefault(registry, {})
    if name not in known:
        known[name] = kind(name, doc, labels, registry=registry, **kw)
    metric: M = known[name]
    return metric


class HttpMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.requests = shared_metric(
            registry,
            Counter,
            "kpipulse_http_requests_total",
            "HTTP requests answered, by route template and status code.",
            ["service", "method", "route", "status"],
        )
        self.duration = shared_metric(
            registry,
            Histogram,
            "kpipulse_http_request_duration_seconds",
            "Time to answer an HTTP request.",
            ["service", "method", "route"],
            buckets=LATENCY_BUCKETS,
        )
        self.in_flight = shared_metric(
            registry,
            Gauge,
            "kpipulse_http_requests_in_flight",
            "HTTP requests being answered now.",
            ["service"],
        )


class HttpMetricsMiddleware:
    """Counts and times requests by route template (never the raw path: bounded labels)."""

    def __init__(self, app: ASGIApp, *, metrics: HttpMetrics, service: str) -> None:
        self._app = app
        self._metrics = metrics
        self._service = service
        self._in_flight = metrics.in_flight.labels(service)
        self._series: dict[tuple[str, str, int], tuple[Counter, Histogram]] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        status = 500
        started = time.perf_counter()

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        self._in_flight.inc()
        try:
            await self._app(scope, receive, send_wrapper)
        finally:
            self._in_flight.dec()
            route = scope.get("route")
            template = getattr(route, "path", None) or "unmatched"
            method = scope.get("method", "GET")
            requests, duration = self._children(method, template, status)
            requests.inc()
            duration.observe(time.perf_counter() - started)

    def _children(self, method: str, template: str, status: int) -> tuple[Counter, Histogram]:
        """The labelled series of a request, looked up once per distinct label set.

        ``labels()`` takes a lock and builds tuples on every call, a visible share of a
        small request. Route templates, methods and statuses are few, so this stays small.
        """
        key = (method, template, status)
        found = self._series.get(key)
        if found is None:
            found = self._series[key] = (
                self._metrics.requests.labels(self._service, method, template, str(status)),
                self._metrics.duration.labels(self._service, method, template),
            )
        return found


#: KPI values are business data: only scrapers with a token see these families.
PRIVATE_PREFIX: Final = "kpipulse_kpi_"


class _PublicMetrics(Collector):
    def __init__(self, registry: CollectorRegistry) -> None:
        self._registry = registry

    def collect(self) -> Iterator[Metric]:
        return (m for m in self._registry.collect() if not m.name.startswith(PRIVATE_PREFIX))


def metrics_endpoint(  # type: ignore[no-untyped-def]
    registry: CollectorRegistry, tokens: Sequence[str] = ()
):
    """/metrics: everything with ``Authorization: Bearer <token>``, else no KPI values."""
    public = _PublicMetrics(registry)
    expected = [t.encode() for t in tokens if t]

    async def metrics(request: Request) -> Response:
        header = request.headers.get("authorization")
        if header is None:
            return Response(generate_latest(public), media_type=CONTENT_TYPE_LATEST)
        scheme, _, given = header.partition(" ")
        sent = given.strip().encode()
        # Every token compared, in constant time: no timing tells which one nearly matched.
        matched = [hmac.compare_digest(sent, token) for token in expected]
        if scheme.lower() != "bearer" or not any(matched):
            return Response(
                "metrics token invalid: send Authorization: Bearer <KPIPULSE_METRICS_TOKEN>\n",
                status_code=401,
                headers={"WWW-Authenticate": "Bearer"},
            )
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    return metrics


class ConsumerMetrics:
    """Lag and dead letters for a service that consumes from Kafka."""

    def __init__(self, registry: CollectorRegistry, service: str) -> None:
        self._service = service
        self.lag = shared_metric(
            registry,
            Gauge,
            "kpipulse_consumer_lag",
            "Messages between the consumer's position and the partition's end.",
            ["service", "topic", "partition"],
        )
        self.dlq = shared_metric(
            registry,
            Counter,
            "kpipulse_dlq_messages_total",
            "Messages sent to the dead-letter topic, by reason.",
            ["service", "reason"],
        )

    def dead_lettered(self, reason: str, count: int = 1) -> None:
        self.dlq.labels(self._service, reason).inc(count)

    def set_lag(self, topic: str, partition: int, lag: int) -> None:
        self.lag.labels(self._service, topic, str(partition)).set(lag)
