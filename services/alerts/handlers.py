"""Consumer handler: KPI value messages → alert transitions + outbox rows + offsets.

A batch is applied in ONE transaction together with the next offsets, so a crash at any
point either keeps all of it or none of it; on restart the consumer seeks to the stored
offsets and messages already applied are skipped, never applied twice. A message that is
not a valid KPI value goes to the dead-letter topic with the reason, before the offsets
move past it (at least once, like every dead letter).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from datetime import datetime

from pydantic import ValidationError
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.alerts.domain.conditions import Condition, has_recovered, is_worse
from services.alerts.domain.lifecycle import State
from services.alerts.repository import KpiLatest
from services.alerts.transitions import AlertWriter, Evaluation
from shared.bus.dlq import DeadLetter, DeadLetterQueue, first_problem
from shared.bus.ports import Message, PartitionId, PublishError
from shared.contracts.kpi_values import KpiValueMessage
from shared.db.engine import transaction
from shared.db.offsets import OffsetRepository
from shared.metrics import ConsumerMetrics

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]


class KpiValueHandler:
    def __init__(
        self,
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
    ) -> None:
        self._sessions = sessions
        self._offsets = offsets
        self._writer = writer
        self._dlq = dlq
        self._consumer_metrics = consumer_metrics
        self._clock = clock
        self._keep = trend_points
        self._on_commit = on_commit
        self._retry_max_s = retry_max_s

    async def __call__(self, messages: Sequence[Message]) -> None:
        # The database (or, for a dead letter, Kafka) being briefly away must not skip a
        # batch: the consumer's position has moved past it, so retry here until it is
        # applied (lag shows the stall).
        delay = 0.2
        while True:
            try:
                enqueued = await self.apply(messages)
                break
            except (SQLAlchemyError, OSError, PublishError):
                log.exception("applying a batch failed; retrying in %.1f s", delay)
                await asyncio.sleep(delay)
                delay = min(self._retry_max_s, delay * 2)
        if enqueued:
            self._on_commit()

    async def apply(self, messages: Sequence[Message]) -> int:
        partitions = sorted({PartitionId(m.topic, m.partition) for m in messages})
        enqueued = 0
        letters: list[DeadLetter] = []
        async with transaction(self._sessions) as session:
            stored = await self._offsets.locked(session, partitions)
            next_offsets: dict[PartitionId, int] = {}
            for message in messages:
                pid = PartitionId(message.topic, message.partition)
                next_offsets[pid] = max(next_offsets.get(pid, 0), message.offset + 1)
                if message.offset < stored.get(pid, 0):
                    continue  # applied by an earlier run (or another instance)
                value = self._parse(message, letters)
                if value is not None:
                    enqueued += await self._apply_one(session, value)
            if letters:
                # Before the commit: a crash after it would lose the letters; a crash
                # before it sends them again with the batch.
                await self._dlq.send(letters)
            await self._offsets.save(
                session,
                {p: o for p, o in next_offsets.items() if o > stored.get(p, 0)},
            )
        if letters:  # counted once committed, not once per attempt
            self._consumer_metrics.dead_lettered("invalid_kpi_value", len(letters))
        return enqueued

    def _parse(self, message: Message, letters: list[DeadLetter]) -> KpiValueMessage | None:
        try:
            return KpiValueMessage.from_bytes(message.value)
        except (ValidationError, ValueError) as exc:
            reason = _reason(exc)
            log.warning(
                "dead-lettering an invalid KPI value message",
                extra={
                    "topic": message.topic,
                    "partition": message.partition,
                    "offset": message.offset,
                    "error": reason,
                },
            )
            letters.append(
                DeadLetter.of(message, reason=f"invalid KPI value: {reason}", stage="alerts")
            )
            return None

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
            worse = is_worse(msg.value, msg.minimum, msg.direction, status=msg.status)
            recovered = has_recovered(
                msg.value, msg.minimum, msg.direction, status=msg.status, margin=margin
            )
            evaluations.append(
                Evaluation(Condition.BELOW_MINIMUM, worse, recovered and not worse, msg.value)
            )
            evaluations.append(Evaluation(Condition.STALE, False, True, msg.value))
        enqueued = 0
        for evaluation in evaluations:
            current = open_alerts.get(evaluation.condition)
            enqueued += await writer.apply(session, latest, current, evaluation, now)
        return enqueued


def _reason(exc: Exception) -> str:
    return first_problem(exc) if isinstance(exc, ValidationError) else str(exc)[:500]
