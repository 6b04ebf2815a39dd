"""The alerts service's Prometheus metrics, on the registry its composition root owns."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

# Delivery spans queueing, backoff and retries: seconds to hours.
DELIVERY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 300, 900, 3600, 14400)
STATES = ("pending", "firing", "resolved")


class AlertMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.sent = Counter(
            "kpipulse_notifications_sent_total",
            "Notifications the receiving server accepted, by channel.",
            ["channel"],
            registry=registry,
        )
        self.failed = Counter(
            "kpipulse_notifications_failed_total",
            "Delivery attempts that failed (retried or final), by channel.",
            ["channel"],
            registry=registry,
        )
        self.failed_final = Counter(
            "kpipulse_notifications_given_up_total",
            "Notifications abandoned: a final error or attempts exhausted, by channel.",
            ["channel"],
            registry=registry,
        )
        self.suppressed = Counter(
            "kpipulse_notifications_suppressed_total",
            "Notifications not sent because a silence covered the KPI, by channel.",
            ["channel"],
            registry=registry,
        )
        self.undeliverable = Counter(
            "kpipulse_notifications_undeliverable_total",
            "Notifications nobody could receive: an owner without any address and no "
            "default address configured (listed with status undeliverable).",
            registry=registry,
        )
        self.uncertain = Counter(
            "kpipulse_notifications_uncertain_total",
            "Re-sends of notifications whose earlier send may have succeeded "
            "(a worker died before recording the outcome), by channel.",
            ["channel"],
            registry=registry,
        )
        self.delivery = Histogram(
            "kpipulse_notification_delivery_seconds",
            "From the outbox row's creation to the successful send, by channel.",
            ["channel"],
            buckets=DELIVERY_BUCKETS,
            registry=registry,
        )
        self.alerts = Gauge(
            "kpipulse_alerts",
            "Alerts by lifecycle state.",
            ["state"],
            registry=registry,
        )
        self.outbox_depth = Gauge(
            "kpipulse_outbox_depth",
            "Notifications waiting to be delivered (pending or being sent).",
            registry=registry,
        )
        self.outbox_oldest_age = Gauge(
            "kpipulse_outbox_oldest_age_seconds",
            "Age of the oldest notification still waiting to be delivered.",
            registry=registry,
        )
        self.transitions = Counter(
            "kpipulse_alert_transitions_total",
            "Alert lifecycle transitions, by condition and new state.",
            ["condition", "to_state"],
            registry=registry,
        )

    def set_alert_counts(self, counts: dict[str, int]) -> None:
        for state in STATES:
            self.alerts.labels(state).set(counts.get(state, 0))
