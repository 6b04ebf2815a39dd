"""Publication: a tick's KPI values stored as current, and the claimed ones published.

A value is published at once when its status changes, otherwise at most once per
``update_every``; the claim in ``kpi_current`` enforces that across instances, in the
same transaction as the publish, so if Kafka refuses, the claims roll back.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.scoring.domain.catalog import KpiDefinition
from services.scoring.domain.evaluate import Evaluation
from services.scoring.repository import Claim, CurrentRepository, CurrentValue
from shared.bus.ports import OutgoingRecord, Publisher
from shared.contracts.kpi_values import KpiStatus, KpiValueMessage
from shared.db.engine import transaction


@dataclass(frozen=True, slots=True)
class PendingValue:
    """A KPI's new value, its message, and since when nothing may have been published
    for it to be published now (unless its status changed)."""

    value: CurrentValue
    message: KpiValueMessage
    not_since: datetime


class ValuePublication:
    def __init__(
        self,
        *,
        sessions: async_sessionmaker[AsyncSession],
        current: CurrentRepository,
        publisher: Publisher,
        topic: str,
    ) -> None:
        self._sessions = sessions
        self._current = current
        self._publisher = publisher
        self._topic = topic

    async def store(self, pending: Sequence[PendingValue]) -> set[str]:
        """Store every value and publish the claimed ones, in one transaction; the keys
        published. Raises ``PublishError`` (nothing stored) when Kafka refuses.

        One transaction per tick rather than per KPI: under load every KPI changes on
        every tick, and the round trips were most of the cost.
        """
        if not pending:
            return set()
        async with transaction(self._sessions) as session:
            claimed = await self._current.claim_publications(
                session, [Claim(p.value, p.not_since) for p in pending]
            )
            records = [
                OutgoingRecord(key=p.value.kpi_key.encode(), value=p.message.to_bytes())
                for p in pending
                if p.value.kpi_key in claimed
            ]
            if records:
                await self._publisher.publish(self._topic, records)
        return claimed


def value_message(
    kpi: KpiDefinition,
    evaluation: Evaluation,
    *,
    as_of: datetime,
    computed_at: datetime,
    status: KpiStatus,
    score: float | None,
    leading: list[str],
    coverage: float = 1.0,
    retired: bool = False,
    value_due_period: datetime | None = None,
) -> KpiValueMessage:
    """The message about ``kpi``'s value, with the thresholds in force."""
    return KpiValueMessage(
        kpi_key=kpi.key,
        name=kpi.name,
        value=evaluation.value,
        numerator=evaluation.numerator,
        denominator=evaluation.denominator,
        window_s=int(kpi.window.total_seconds()),
        as_of=as_of,
        computed_at=computed_at,
        status=status,
        score=score,
        minimum=kpi.minimum,
        target=kpi.target,
        direction=kpi.direction,
        owners=list(kpi.owners),
        expires_on=kpi.expires_on,
        update_every_s=max(1, int(kpi.update_every.total_seconds())),
        leading_indicators_in_breach=leading,
        retired=retired,
        coverage=coverage,
        require_full_window=kpi.require_full_window,
        department=kpi.department,
        unit=kpi.unit,
        value_due_period=value_due_period,
    )
