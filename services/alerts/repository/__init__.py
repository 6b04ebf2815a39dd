"""Every SQL statement of the alerts service. Callers own the transaction: nothing here
commits, so a state change and its outbox rows land together or not at all."""

from services.alerts.repository.alerts import AlertRepository, AlertRow, TransitionRow
from services.alerts.repository.kpis import KpiLatest, KpiRepository
from services.alerts.repository.outbox import OutboxRepository, OutboxRow
from services.alerts.repository.silences import SilenceRepository, SilenceRow

__all__ = [
    "AlertRepository",
    "AlertRow",
    "KpiLatest",
    "KpiRepository",
    "OutboxRepository",
    "OutboxRow",
    "SilenceRepository",
    "SilenceRow",
    "TransitionRow",
]
