"""Ingest's own metrics (HTTP latency and in-flight come from shared.metrics)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram

BATCH_BUCKETS = (1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000)


class IngestMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.events = Counter(
            "kpipulse_ingest_events_total",
            "Events received, by source and outcome (accepted or rejected).",
            ["source", "outcome"],
            registry=registry,
        )
        self.batch_size = Histogram(
            "kpipulse_ingest_batch_size",
            "Events per ingest request.",
            buckets=BATCH_BUCKETS,
            registry=registry,
        )
        self.producer_errors = Counter(
            "kpipulse_ingest_producer_errors_total",
            "Publishes Kafka did not acknowledge (answered 503).",
            registry=registry,
        )

        # Labelled series looked up once: labels() costs more than the increment.
        self._events_by: dict[tuple[str, str], Counter] = {}

    def counted(self, source: str, accepted: int, rejected: int) -> None:
        if accepted:
            self._series(source, "accepted").inc(accepted)
        if rejected:
            self._series(source, "rejected").inc(rejected)

    def _series(self, source: str, outcome: str) -> Counter:
        series = self._events_by.get((source, outcome))
        if series is None:  # sources are the four of the contract
            series = self._events_by[source, outcome] = self.events.labels(source, outcome)
        return series
