"""Versioned message contracts: one definition each, used by every service."""

from shared.contracts.events import EVENT_SCHEMA_VERSION, EventEnvelope, Source
from shared.contracts.kpi_values import KPI_VALUE_SCHEMA_VERSION, KpiStatus, KpiValueMessage
from shared.contracts.topics import TopicNames, Topics

__all__ = [
    "EVENT_SCHEMA_VERSION",
    "KPI_VALUE_SCHEMA_VERSION",
    "EventEnvelope",
    "KpiStatus",
    "KpiValueMessage",
    "Source",
    "TopicNames",
    "Topics",
]
