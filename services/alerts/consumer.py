"""Alerts' consumer: KPI value messages -> alert transitions and outbox rows.

``shared.bus.consumer.TransactionalConsumer`` applies each batch in one transaction with
the next offsets, so a crash at any point keeps all of it or none of it, and a message
that is not a valid KPI value goes to the dead-letter topic with the reason before the
offsets move past it. This module supplies the decoding and the effect of one value.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from datetime import datetime

from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.alerts.domain.conditions import Condition, dedupe_key, has_recovered, is_worse
from services.alerts.domain.lifecycle import State
from services.alerts.repository import AlertRow, KpiLatest
from services.alerts.transitions import AlertWriter, Evaluation
from shared.bus.consumer import (
    Applied,
    DeadLetterPolicy,
    InvalidMessage,
    Item,
    RetryPolicy,
    TransactionalConsumer,
)
from shared.bus.dlq import DeadLetterQueue, first_problem
from shared.bus.ports import Message
from shared.contracts.kpi_values import KpiValueMessage
from shared.db.offsets import OffsetRepository
from shared.metrics import ConsumerMetrics

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]


def kpi_value_consumer(
    *,
    sessions: async_sessionmaker[AsyncSession],
    offsets: OffsetRepository,
    writer: AlertWriter,
    dlq: DeadLetterQueue,
    consumer_metrics: ConsumerMetrics,
    clock: Clock,
    trend_points: int,
    on_commit: Callable[[], None] = lambda: None,
    retry_max_s: float = 30.0,
) -> TransactionalConsumer[KpiValueMessage]:
    application = ApplyKpiValues(
        writer=writer, clock=clock, trend_points=trend_points, on_commit=on_commit
    )
    return TransactionalConsumer(
        application,
        sessions=sessions,
        offsets=offsets,
        dead_letters=DeadLetterPolicy(dlq, stage=application.stage),
        metrics=consumer_metrics,
        retry=RetryPolicy(max_s=retry_max_s),
    )


class ApplyKpiValues:
    """The ``Application`` of alerts' consumer."""

    stage = "alerts"

    def __init__(
        self,
        *,
        writer: AlertWriter,
        clock: Clock,
        trend_points: int,
        on_commit: Callable[[], None],
    ) -> None:
        self._writer = writer
        self._clock = clock
        self._keep = trend_points
        self._on_commit = on_commit

    def decode(self, message: Message) -> KpiValueMessage:
        try:
            return KpiValueMessage.from_bytes(message.value)
        except (ValidationError, ValueError) as exc:
            reason = first_problem(exc) if isinstance(exc, ValidationError) else str(exc)[:500]
            raise InvalidMessage(
                f"invalid KPI value: {reason}", kind="invalid_kpi_value"
            ) from exc

    async def apply(
        self, session: AsyncSession, items: Sequence[Item[KpiValueMessage]]
    ) -> Applied:
        enqueued = 0
        for item in items:
            enqueued += await self._apply_one(session, item.value)
        return Applied(after_commit=self._on_commit if enqueued else None)

    async def _forget(self, session: AsyncSession, kpi_key: str, now: datetime) -> None:
        """The KPI left the catalog: close its open alerts without notices (there is
        nothing left to fix) and stop watching it, or the scheduler would report it
        stale for ever."""
        writer = self._writer
        for alert in (await writer.alerts.open_for(session, kpi_key)).values():
            await writer.alerts.move(
                session, alert.id, from_state=alert.state, to_state=State.RESOLVED,
                value=alert.value, now=now,
            )
        await writer.kpis.forget(session, kpi_key)
        log.info("stopped watching a retired kpi", extra={"kpi": kpi_key})

    async def _apply_one(self, session: AsyncSession, msg: KpiValueMessage) -> int:
        now = self._clock()
        writer = self._writer
        previous = await writer.kpis.get(session, msg.kpi_key)
        if previous is not None and msg.as_of < previous.as_of:
            return 0  # an older value arriving late says nothing about the present
        if msg.retired:
            await self._forget(session, msg.kpi_key, now)
            return 0
        fresh = msg.value is not None
        latest = KpiLatest(
            kpi_key=msg.kpi_key,
            name=msg.name,
            value=msg.value,
            status=msg.status,
            minimum=msg.minimum,
            target=msg.target,
            direction=msg.direction,
            owners=[owner.model_dump() for owner in msg.owners],
            expires_on=msg.expires_on,
            update_every_s=msg.update_every_s,
            leading_in_breach=list(msg.leading_indicators_in_breach),
            as_of=msg.as_of,
            last_seen_at=now,
            last_value_at=now if fresh else (previous.last_value_at if previous else None),
            department=msg.department,
            unit=msg.unit,
            score=msg.score,
            first_seen_at=(previous.first_seen_at or previous.last_seen_at) if previous else now,
        )
        await writer.kpis.save(session, latest)
        await writer.kpis.observe(
            session,
            kpi_key=msg.kpi_key,
            value=msg.value,
            status=msg.status,
            as_of=msg.as_of,
            received_at=now,
            keep=self._keep,
        )
        open_alerts = await writer.alerts.open_for(session, msg.kpi_key)
        evaluations = [
            Evaluation(
                Condition.EARLY_WARNING,
                worse=bool(msg.leading_indicators_in_breach),
                recovered=not msg.leading_indicators_in_breach,
                value=msg.value,
            )
        ]
        if msg.value is not None:
            # "no_data" is not a value: it neither breaches nor recovers (staleness does).
            margin = writer.recovery_margin(msg.kpi_key)
            # A window still filling is not yet a verdict (unless the KPI asks for it).
            waiting = msg.partial and msg.require_full_window
            worse = is_worse(msg.status) and not waiting
            recovered = has_recovered(
                msg.value, msg.minimum, msg.direction, status=msg.status, margin=margin
            )
            evaluations.append(
                Evaluation(Condition.BELOW_MINIMUM, worse, recovered and not worse, msg.value)
            )
            evaluations.append(Evaluation(Condition.STALE, False, True, msg.value))
        evaluations.append(await self._value_due(session, msg, open_alerts, now))
        enqueued = 0
        for evaluation in evaluations:
            current = open_alerts.get(evaluation.condition)
            enqueued += await writer.apply(session, latest, current, evaluation, now)
        return enqueued

    async def _value_due(
        self,
        session: AsyncSession,
        msg: KpiValueMessage,
        open_alerts: dict[Condition, AlertRow],
        now: datetime,
    ) -> Evaluation:
        """A reported KPI's missing value: one reminder per period. A reminder still open
        for an earlier period closes (silently) so that the new period gets its own."""
        due = msg.value_due_period
        episode = due.isoformat() if due is not None else None
        open_due = open_alerts.get(Condition.VALUE_DUE)
        if (
            open_due is not None
            and episode is not None
            and open_due.dedupe_key != dedupe_key(msg.kpi_key, Condition.VALUE_DUE, episode)
        ):
            await self._writer.alerts.move(
                session, open_due.id, from_state=open_due.state, to_state=State.RESOLVED,
                value=msg.value, now=now,
            )
            del open_alerts[Condition.VALUE_DUE]
        return Evaluation(Condition.VALUE_DUE, due is not None, due is None, msg.value, episode)

