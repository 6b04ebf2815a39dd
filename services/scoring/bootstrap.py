"""Scoring's composition root: every part of the service, wired once.

Used by ``__main__`` (one service), ``kpipulse dev`` (all three in one process) and the
tests; nothing else constructs the service's parts.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from fastapi import FastAPI

from services.scoring.app import ScoringParts, create_app
from services.scoring.catalog_service import CatalogService
from services.scoring.catalog_state import CatalogState
from services.scoring.consumer import FoldEvents
from services.scoring.domain.catalog import Catalog
from services.scoring.evaluator import Evaluator
from services.scoring.metrics import ScoringMetrics
from services.scoring.publication import ValuePublication
from services.scoring.queries import KpiQueries
from services.scoring.repository import ScoringRepositories
from services.scoring.retirement import RetirementAnnouncer
from services.scoring.windows import WindowTotals
from shared.bootstrap import Adapters
from shared.bus.consumer import DeadLetterPolicy, TransactionalConsumer
from shared.bus.dlq import DeadLetterQueue
from shared.db.offsets import offsets_for
from shared.settings import Settings


def _utcnow() -> datetime:
    return datetime.now(UTC)


def build(
    settings: Settings, adapters: Adapters, *, clock: Callable[[], datetime] = _utcnow
) -> FastAPI:
    scoring = settings.scoring
    topics = settings.kafka.topics()
    sessions = adapters.sessions
    metrics = ScoringMetrics(adapters.registry)
    repositories = ScoringRepositories.for_dialect(adapters.engine.dialect.name)
    state = CatalogState(Catalog(()), settings.tz)
    catalog_service = CatalogService(sessions, repositories.catalog, repositories.buckets, state)
    offsets = offsets_for(sessions, consumer=scoring.group_id)
    evaluator = Evaluator(
        sessions=sessions,
        catalog=state,
        windows=WindowTotals(repositories.buckets, state.tz, refresh_s=scoring.settled_refresh_s),
        buckets=repositories.buckets,
        current=repositories.current,
        publication=ValuePublication(
            sessions=sessions,
            current=repositories.current,
            publisher=adapters.publisher,
            topic=topics.kpi_values,
        ),
        retirement=RetirementAnnouncer(
            sessions=sessions,
            catalog_repository=repositories.catalog,
            current=repositories.current,
            publisher=adapters.publisher,
            topic=topics.kpi_values,
            clock=clock,
        ),
        metrics=metrics,
        clock=clock,
        # Alerts' recovery margins (one setting read by both services): a value crossing
        # the level alerts resolves at is published at once.
        recovery_margin=lambda key: settings.alerts.recovery_margin_overrides.get(
            key, settings.alerts.recovery_margin
        ),
    )
    fold = TransactionalConsumer(
        FoldEvents(
            catalog=state,
            buckets=repositories.buckets,
            event_ids=repositories.event_ids,
            metrics=metrics,
            on_folded=evaluator.mark,
        ),
        sessions=sessions,
        offsets=offsets,
        dead_letters=DeadLetterPolicy(
            DeadLetterQueue(adapters.publisher, topics.events_dlq), stage=FoldEvents.stage
        ),
        metrics=metrics.consumer,
        # Not waiting for the disk takes the disk's stalls out of every event's latency;
        # what a database crash loses, the consumer reads again (see ``Rewind``).
        wait_for_flush=scoring.fold_commit_waits_for_disk,
    )
    parts = ScoringParts(
        adapters=adapters,
        metrics=metrics,
        repositories=repositories,
        catalog=state,
        catalog_service=catalog_service,
        subscriber=adapters.subscriber(
            topics=[topics.events],
            group_id=scoring.group_id,
            offset_store=offsets,
            max_batch=scoring.max_batch,
        ),
        fold=fold,
        evaluator=evaluator,
        queries=KpiQueries(
            sessions,
            state,
            repositories.buckets,
            repositories.current,
            repositories.catalog,
            scoring,
            expiry_warning_days=settings.alerts.expiry_warning_days,
        ),
    )
    return create_app(settings, parts)
