"""Scoring's app: the read API and the page, and the consumer, the evaluator and the
catalog's background loops for the app's lifetime."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

from fastapi import FastAPI

from services.scoring.api.admin import kpi_admin_router
from services.scoring.api.export import export_router
from services.scoring.api.page import mount_page
from services.scoring.api.routes import kpi_router
from services.scoring.api.values import values_router
from services.scoring.background import prune_dedupe_ids, report_lag, watch_catalog
from services.scoring.catalog_service import CatalogService, describe_diff, file_source
from services.scoring.catalog_state import CatalogState
from services.scoring.domain.catalog import parse_catalog
from services.scoring.evaluator import Evaluator
from services.scoring.metrics import ScoringMetrics
from services.scoring.queries import KpiQueries
from services.scoring.reported import ReportedValues
from services.scoring.repository import ScoringRepositories
from shared.bootstrap import Adapters
from shared.bus.ports import BatchHandler, Subscriber
from shared.db.engine import ping
from shared.http import install_common
from shared.i18n import LocalePolicy
from shared.identity.access import Authenticator, install
from shared.identity.api import session_router, users_router
from shared.identity.service import IdentityService
from shared.metrics import HttpMetrics
from shared.settings import Settings
from shared.tasks import guarded

log = logging.getLogger(__name__)

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


@dataclass(frozen=True, slots=True)
class ScoringParts:
    """What the scoring app runs, wired by ``services.scoring.bootstrap``."""

    adapters: Adapters
    metrics: ScoringMetrics
    repositories: ScoringRepositories
    catalog: CatalogState
    catalog_service: CatalogService
    subscriber: Subscriber
    fold: BatchHandler
    evaluator: Evaluator
    queries: KpiQueries
    reported: ReportedValues


def create_app(settings: Settings, parts: ScoringParts) -> FastAPI:
    """The read API and the page, with the consumer, the evaluator and the catalog's
    background loops running for the app's lifetime."""
    scoring = settings.scoring
    publisher, sessions = parts.adapters.publisher, parts.adapters.sessions
    state, catalog_service, subscriber = parts.catalog, parts.catalog_service, parts.subscriber
    evaluator, handler, metrics = parts.evaluator, parts.fold, parts.metrics

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
                        sessions, parts.repositories.event_ids, scoring.dedupe_horizon_s, stop
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
    locales = LocalePolicy(settings.company.locale, settings.time_zone)
    auth = Authenticator(IdentityService(sessions), settings.admin_token)
    install(app, auth)
    # Before the KPI routes: /v1/kpis/export.csv must not read as the KPI "export.csv".
    app.include_router(export_router(parts.queries, locales))
    app.include_router(kpi_router(parts.queries, catalog_service))
    app.include_router(kpi_admin_router(catalog_service))
    app.include_router(values_router(parts.reported, parts.queries))
    app.include_router(
        session_router(
            auth,
            secure_cookie=settings.session_cookie_secure,
            failures_per_address=settings.sign_in_failures_per_address,
        )
    )
    app.include_router(users_router(auth))
    mount_page(
        app, alerts_api=scoring.alerts_api, time_zone=settings.time_zone, locales=locales
    )

    async def bus_ready() -> bool:
        return await publisher.ping()

    async def db_ready() -> bool:
        return await ping(parts.adapters.engine)

    install_common(
        app,
        service="scoring",
        registry=parts.adapters.registry,
        http_metrics=HttpMetrics(parts.adapters.registry),
        readiness={"kafka": bus_ready, "database": db_ready},
        metrics_tokens=[
            settings.metrics_token.get_secret_value(), settings.admin_token.get_secret_value()
        ],
    )
    return app
