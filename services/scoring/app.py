"""Scoring's composition: consumer, evaluator, catalog watcher and the read API."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI
from prometheus_client import CollectorRegistry
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from services.scoring.api.admin import kpi_admin_router
from services.scoring.api.page import mount_page
from services.scoring.api.routes import kpi_router
from services.scoring.background import prune_dedupe_ids, report_lag, watch_catalog
from services.scoring.catalog_service import CatalogService, describe_diff, file_source
from services.scoring.catalog_state import CatalogState
from services.scoring.consumer import FoldEvents
from services.scoring.domain.catalog import Catalog, parse_catalog
from services.scoring.evaluator import Evaluator
from services.scoring.metrics import ScoringMetrics
from services.scoring.queries import KpiQueries
from services.scoring.repository import ScoringRepositories
from services.scoring.windows import WindowTotals
from shared.auth import admin_guard
from shared.bus.consumer import DeadLetterPolicy, TransactionalConsumer
from shared.bus.dlq import DeadLetterQueue
from shared.bus.ports import Publisher, Subscriber
from shared.db.engine import ping
from shared.db.offsets import OffsetRepository
from shared.http import install_common
from shared.metrics import HttpMetrics
from shared.settings import Settings
from shared.tasks import guarded

log = logging.getLogger(__name__)

SubscriberFactory = Callable[[OffsetRepository], Subscriber]


async def load_catalog_file(service: CatalogService, path: Path, *, actor: str) -> None:
    """Apply the catalog file (start-up) to the KPIs it manages; leave every other alone.

    A KPI of the file that the API manages (taken over, or created there first) keeps
    its API definition: a restart never undoes an edit. It is logged, not fatal.
    """
    catalog = parse_catalog(await asyncio.to_thread(path.read_text))
    written = await service.apply_file(
        catalog, source=file_source(path), actor=actor, conflicts="skip"
    )
    if not written.diff.empty:
        log.info(
            "catalog applied", extra={"file": str(path), "changes": describe_diff(written.diff)}
        )
    for key, owner in written.skipped:
        log.warning(
            "catalog file names a KPI it does not manage: left as it is",
            extra={"file": str(path), "kpi": key, "managed_by": owner},
        )


def create_app(
    settings: Settings,
    *,
    engine: AsyncEngine,
    sessions: async_sessionmaker[AsyncSession],
    publisher: Publisher,
    subscriber_factory: SubscriberFactory,
    registry: CollectorRegistry,
    http_metrics: HttpMetrics | None = None,
) -> FastAPI:
    scoring = settings.scoring
    topics = settings.kafka.topics()
    metrics = ScoringMetrics(registry)
    repositories = ScoringRepositories.for_dialect(engine.dialect.name)
    buckets, current, catalog_repo = (
        repositories.buckets, repositories.current, repositories.catalog
    )
    state = CatalogState(Catalog(()), settings.tz)
    catalog_service = CatalogService(sessions, catalog_repo, buckets, state)
    offsets = OffsetRepository(sessions, consumer=scoring.group_id)
    subscriber = subscriber_factory(offsets)
    evaluator = Evaluator(
        sessions=sessions,
        catalog=state,
        windows=WindowTotals(buckets, state.tz, refresh_s=scoring.settled_refresh_s),
        current=current,
        catalog_repository=catalog_repo,
        publisher=publisher,
        topic=topics.kpi_values,
        metrics=metrics,
        # Alerts' recovery margins (one setting read by both services): a value crossing
        # the level alerts resolves at is published at once.
        recovery_margin=lambda key: settings.alerts.recovery_margin_overrides.get(
            key, settings.alerts.recovery_margin
        ),
    )
    handler = TransactionalConsumer(
        FoldEvents(
            catalog=state,
            buckets=buckets,
            event_ids=repositories.event_ids,
            metrics=metrics,
            on_folded=evaluator.mark,
        ),
        sessions=sessions,
        offsets=offsets,
        dead_letters=DeadLetterPolicy(
            DeadLetterQueue(publisher, topics.events_dlq), stage=FoldEvents.stage
        ),
        metrics=metrics.consumer,
        # Not waiting for the disk takes the disk's stalls out of every event's latency;
        # what a database crash loses, the consumer reads again (see ``Rewind``).
        wait_for_flush=scoring.fold_commit_waits_for_disk,
    )
    queries = KpiQueries(
        sessions, state, buckets, current, catalog_repo, scoring,
        expiry_warning_days=settings.alerts.expiry_warning_days,
    )

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        await publisher.start()
        if scoring.catalog_path is not None:
            await load_catalog_file(catalog_service, scoring.catalog_path, actor="startup")
        state.replace(await catalog_service.load())
        await subscriber.start()
        stop = asyncio.Event()
        tasks = [
            asyncio.create_task(guarded("consumer", lambda: subscriber.run(handler))),
            asyncio.create_task(guarded("evaluator", lambda: evaluator.run(stop))),
            asyncio.create_task(
                guarded("catalog watcher", lambda: watch_catalog(catalog_service, state, stop))
            ),
            asyncio.create_task(
                guarded(
                    "dedupe pruner",
                    lambda: prune_dedupe_ids(
                        sessions, repositories.event_ids, scoring.dedupe_horizon_s, stop
                    ),
                )
            ),
            asyncio.create_task(
                guarded("lag reporter", lambda: report_lag(subscriber, metrics, stop))
            ),
        ]
        try:
            yield
        finally:
            stop.set()
            await subscriber.stop()  # finishes the batch in hand and commits it
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await publisher.stop()

    app = FastAPI(
        title="KPI Pulse scoring",
        version="1",
        description="Rolling KPI values, scores, the balanced scorecard, lead/lag and "
        "period analysis. Changes need `Authorization: Bearer <admin token>`.",
        lifespan=lifespan,
    )
    app.include_router(kpi_router(queries, catalog_service))
    app.include_router(kpi_admin_router(catalog_service, admin_guard(settings.admin_token)))
    mount_page(app, alerts_api=scoring.alerts_api, time_zone=settings.time_zone)

    async def bus_ready() -> bool:
        return await publisher.ping()

    async def db_ready() -> bool:
        return await ping(engine)

    install_common(
        app,
        service="scoring",
        registry=registry,
        http_metrics=http_metrics or HttpMetrics(registry),
        readiness={"kafka": bus_ready, "database": db_ready},
    )
    return app
