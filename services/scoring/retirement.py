"""Retirement: a last message for each KPI that left the catalog.

Alerts watches every KPI it heard of, and would report a retired one stale for ever;
scoring publishes one ``retired`` message per KPI that still has a current value but is
no longer in the catalog. The current value is dropped in the same transaction: that is
the claim (one instance announces) and the memory (announced once, across restarts). If
Kafka refuses, both roll back and the next try announces again.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from collections.abc import Set as AbstractSet
from datetime import datetime

from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.scoring.domain.catalog import KpiDefinition
from services.scoring.domain.evaluate import Evaluation
from services.scoring.publication import value_message
from services.scoring.repository import CatalogRepository, CurrentRepository
from shared.bus.ports import OutgoingRecord, Publisher
from shared.db.engine import transaction

log = logging.getLogger(__name__)


class RetirementAnnouncer:
    def __init__(
        self,
        *,
        sessions: async_sessionmaker[AsyncSession],
        catalog_repository: CatalogRepository,
        current: CurrentRepository,
        publisher: Publisher,
        topic: str,
        clock: Callable[[], datetime],
    ) -> None:
        self._sessions = sessions
        self._catalog_repository = catalog_repository
        self._current = current
        self._publisher = publisher
        self._topic = topic
        self._clock = clock

    async def announce(
        self, gone: Sequence[str], active: AbstractSet[str], now: datetime
    ) -> list[str]:
        """Announce the retirement of the KPIs of ``gone`` that are not ``active``;
        the keys this instance announced."""
        async with transaction(self._sessions) as session:
            definitions: dict[str, KpiDefinition] = {}
            for stored in await self._catalog_repository.definitions(session, list(gone)):
                try:
                    kpi = KpiDefinition.model_validate(stored)
                except ValidationError:
                    # Stored by an older version and no longer valid: nothing to announce
                    # it with. Logged, not retried for ever.
                    log.warning("a retired kpi's stored definition is invalid",
                                extra={"kpi": stored.get("key")})
                    continue
                if kpi.key not in active:
                    definitions[kpi.key] = kpi
            claimed = await self._current.forget(session, list(definitions))
            computed_at = self._clock()
            records = [
                OutgoingRecord(
                    key=key.encode(),
                    value=value_message(
                        definitions[key], Evaluation(None), as_of=now,
                        computed_at=computed_at, status="no_data", score=None, leading=[],
                        retired=True,
                    ).to_bytes(),
                )
                for key in claimed
            ]
            if records:
                await self._publisher.publish(self._topic, records)
        if claimed:
            log.info("announced retired kpis", extra={"kpis": claimed})
        return claimed
