"""Scoring's Prometheus metrics (registered on the registry passed in)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from shared.contracts.kpi_values import KpiStatus
from shared.metrics import LATENCY_BUCKETS, ConsumerMetrics

STATUSES: tuple[KpiStatus, ...] = ("breach", "below_target", "on_target", "no_data")


class ScoringMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.consumer = ConsumerMetrics(registry, "scoring")
        self.folded = Counter(
            "kpipulse_scoring_events_folded_total",
            "Events counted into KPI buckets (after deduplication).",
            registry=registry,
        )
        self.duplicates = Counter(
            "kpipulse_scoring_duplicate_events_total",
            "Events skipped because their id was already counted.",
            registry=registry,
        )
        self.batch_seconds = Histogram(
            "kpipulse_scoring_batch_seconds",
            "Time to fold and commit one consumed batch.",
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.value = Gauge("kpipulse_kpi_value", "Current KPI value.", ["kpi"], registry=registry)
        self.score = Gauge(
            "kpipulse_kpi_score", "Current KPI score (0-100).", ["kpi"], registry=registry
        )
        self.status = Gauge(
            "kpipulse_kpi_status",
            "1 for the KPI's current status, 0 for the others.",
            ["kpi", "status"],
            registry=registry,
        )
        self.updated = Gauge(
            "kpipulse_kpi_last_update_timestamp_seconds",
            "When the KPI's value was last published (Unix time).",
            ["kpi"],
            registry=registry,
        )
        self.stale = Gauge(
            "kpipulse_kpi_stale",
            "1 when the KPI had no fresh value for twice its update interval.",
            ["kpi"],
            registry=registry,
        )

    def batch_done(self, *, folded: int, duplicates: int, seconds: float) -> None:
        self.folded.inc(folded)
        self.duplicates.inc(duplicates)
        self.batch_seconds.observe(seconds)

    def kpi(
        self, key: str, value: float | None, score: float | None, status: KpiStatus, at: float
    ) -> None:
        # NaN, not zero, when there is no data: a gauge must never show a fake value.
        self.value.labels(key).set(value if value is not None else float("nan"))
        self.score.labels(key).set(score if score is not None else float("nan"))
        for name in STATUSES:
            self.status.labels(key, name).set(1.0 if name == status else 0.0)
        self.updated.labels(key).set(at)
