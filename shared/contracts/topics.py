"""Kafka topic names. The version suffix changes only with an incompatible contract."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final


class Topics:
    EVENTS: Final = "kpipulse.events.v1"
    EVENTS_DLQ: Final = "kpipulse.events.dlq.v1"
    KPI_VALUES: Final = "kpipulse.kpi-values.v1"

    ALL: Final = (EVENTS, EVENTS_DLQ, KPI_VALUES)


@dataclass(frozen=True, slots=True)
class TopicNames:
    """The topics a deployment uses. A prefix isolates test runs sharing one broker."""

    events: str = Topics.EVENTS
    events_dlq: str = Topics.EVENTS_DLQ
    kpi_values: str = Topics.KPI_VALUES

    @classmethod
    def with_prefix(cls, prefix: str) -> TopicNames:
        return cls(
            events=prefix + Topics.EVENTS,
            events_dlq=prefix + Topics.EVENTS_DLQ,
            kpi_values=prefix + Topics.KPI_VALUES,
        )

    def all(self) -> tuple[str, str, str]:
        return (self.events, self.events_dlq, self.kpi_values)
