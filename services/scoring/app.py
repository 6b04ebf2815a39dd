"""Scoring's composition: consumer, evaluator, catalog watcher and the read API."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from zoneinfo import ZoneInfo

from fastapi import FastAPI
from prometheus_client import CollectorRegistry
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from services.scoring.api.page import mount_page
from services.scoring.api.routes import kpi_router
from services.scoring.background import prune_dedupe_ids, report_lag, watch_catalog
from services.scoring.catalog_service import CatalogService, describe_diff
from services.scoring.catalog_state import CatalogState
from services.scoring.consumer import FoldEvents
from services.scoring.domain.catalog import Catalog, parse_catalog
from services.scoring.evaluator import Evaluator
from services.scoring.metrics import ScoringMetrics
from services.scoring.queries import KpiQueries
from services.scoring.repository import ScoringRepositories
from services.scoring.windows import WindowTotals
from shared.bus.consumer import DeadLetterPolicy, TransactionalConsumer
from shared.bus.dlq import DeadLetterQueue
from shared.bus.ports import Publisher, Subscriber
from shared.db.engine import ping
from shared.db.offsets import OffsetRepository
from shared.http import install_common
from shared.identity.access import Authenticator, install
from shared.identity.api import session_router, users_router
from shared.identity.service import IdentityService
from shared.metrics import HttpMetrics
from shared.settings import Settings
from shared.tasks import guarded

log = logging.getLogger(__name__)

SubscriberFactory = Callable[[OffsetRepository], Subscriber]


async def load_catalog_file(service: CatalogService, path: Path, *, actor: str) -> None:
    """Apply the catalog file (start-up). KPIs missing from the file are retired."""
    catalog = parse_catalog(await asyncio.to_thread(path.read_text))
    diff = await service.apply(catalog, actor=actor)
    if not diff.empty:
        log.info("catalog applied", extra={"file": str(path), "changes": describe_diff(diff)})


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
    state = CatalogState(Catalog(()), ZoneInfo(scoring.time_zone))
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
    queries = KpiQueries(sessions, state, buckets, current, catalog_repo, scoring)

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
        "period analysis. Reads need a personal API token (`Authorization: Bearer kpt_…`) "
        "or a signed-in session; each caller sees the KPIs its groups are viewers of.",
        lifespan=lifespan,
    )
    auth = Authenticator(IdentityService(sessions), settings.admin_token)
    install(app, auth)
    app.include_router(kpi_router(queries, catalog_service, auth))
    app.include_router(session_router(auth, secure_cookie=settings.session_cookie_secure))
    app.include_router(users_router(auth))
    mount_page(app, alerts_api=scoring.alerts_api)

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
        metrics_tokens=[
            settings.metrics_token.get_secret_value(), settings.admin_token.get_secret_value()
        ],
    )
    return app
