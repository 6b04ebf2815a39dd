"""The read API's queries: a fixed number of statements whatever the catalog's size.

Statements are counted with a ``before_cursor_execute`` listener on the engine, for a
catalog of 10 KPIs and one of 200, each KPI with a current value, published history,
buckets and leading links; on PostgreSQL and on SQLite. Trends read in one statement are
also held to what reading each KPI's newest publications on its own gives. When each
KPI's data began (its coverage) is asked again only while a window may be partial, and a
detail linked to reported and derived KPIs reads as many statements for 2 links as for 20.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.scoring import queries as queries_module
from services.scoring.catalog_state import CatalogState
from services.scoring.domain.aggregates import BucketKey, TermAggregate
from services.scoring.domain.catalog import Catalog
from services.scoring.queries import TREND_POINTS, KpiQueries
from services.scoring.repository import Claim, CurrentValue, PartitionBucket
from services.scoring.tables import kpi_history
from shared.db.engine import transaction
from shared.settings import ScoringSettings
from tests.integration.contracts.conftest import scoring_repositories
from tests.unit.scoring.factories import make_kpi

Sessions = async_sessionmaker[AsyncSession]
HISTORY_ROWS = 5


def _catalog(size: int) -> Catalog:
    # Every third KPI is led by the one before it: detail pages correlate links.
    return Catalog.from_definitions(
        [
            make_kpi(
                key=f"kpi_{i}",
                indicator="lagging" if i % 3 == 1 else "leading",
                leading_indicators=[f"kpi_{i - 1}"] if i % 3 == 1 else [],
            )
            for i in range(size)
        ]
    )


async def _seed(sessions: Sessions, catalog: Catalog, now: datetime) -> None:
    repositories = scoring_repositories(sessions)
    hour = now.replace(minute=0, second=0, microsecond=0)
    async with transaction(sessions) as session:
        await repositories.current.claim_publications(
            session,
            [
                Claim(
                    CurrentValue(kpi.key, 60.0, None, None, "below_target", 20.0, now, now),
                    not_since=now,
                )
                for kpi in catalog
            ],
        )
        await session.execute(
            kpi_history.insert(),
            [
                {
                    "kpi_key": kpi.key,
                    "at": now - timedelta(minutes=step + 1),
                    "value": float(step),
                    "status": "below_target",
                    "score": 20.0,
                }
                for kpi in catalog
                for step in range(HISTORY_ROWS)
            ],
        )
        await repositories.buckets.add(
            session,
            {
                PartitionBucket(BucketKey(kpi.key, 0, hour - timedelta(days=days)), 0): (
                    TermAggregate(count=days + 1)
                )
                for kpi in catalog
                for days in range(10)
            },
        )


@contextmanager
def _counting(sessions: Sessions) -> Iterator[list[str]]:
    statements: list[str] = []
    engine = sessions.kw["bind"].sync_engine

    def count(*args: Any) -> None:
        statements.append(args[2])

    event.listen(engine, "before_cursor_execute", count)
    try:
        yield statements
    finally:
        event.remove(engine, "before_cursor_execute", count)


def _queries(sessions: Sessions, catalog: Catalog) -> KpiQueries:
    repositories = scoring_repositories(sessions)
    return KpiQueries(
        sessions,
        CatalogState(catalog, ZoneInfo("UTC")),
        repositories.buckets,
        repositories.current,
        repositories.catalog,
        ScoringSettings(),
    )


async def _statements_per_read(sessions: Sessions, size: int) -> dict[str, int]:
    catalog = _catalog(size)
    now = datetime.now(UTC)
    await _seed(sessions, catalog, now)
    queries = _queries(sessions, catalog)
    reads: dict[str, Callable[[], Awaitable[Any]]] = {
        "list": queries.list_kpis,
        "scorecard": queries.scorecard,
        "detail": lambda: queries.detail("kpi_1"),
        "history": lambda: queries.history("kpi_1", None, None, None),
    }
    counts: dict[str, int] = {}
    for name, read in reads.items():
        with _counting(sessions) as statements:
            answer = await read()
        counts[name] = len(statements)
        if name == "list":
            assert len(answer) == size
            # The seeded publications and the one of the claim.
            assert all(len(view["trend"]) == HISTORY_ROWS + 1 for view in answer)
        if name == "detail":
            assert answer["kpi"]["key"] == "kpi_1"
            assert [(r["leading"], r["lagging"]) for r in answer["lead_lag"]] == [
                ("kpi_0", "kpi_1")
            ]
            assert answer["periods"]
    return counts


async def test_reads_issue_as_many_statements_for_200_kpis_as_for_10(
    sessions: Sessions,
) -> None:
    small = await _statements_per_read(sessions, 10)
    async with transaction(sessions) as session:
        for table in ("kpi_history", "kpi_current", "kpi_buckets"):
            await session.execute(kpi_history.metadata.tables[table].delete())
    large = await _statements_per_read(sessions, 200)
    assert large == small
    assert all(count <= 3 for count in large.values()), large


async def test_trends_read_together_equal_each_kpi_read_alone(sessions: Sessions) -> None:
    """Thinned as the list always did: of the newest 500 publications in the window,
    every ``len // TREND_POINTS``-th counted from the oldest."""
    now = datetime.now(UTC)
    rows_per_kpi = {"few": 7, "some": 137, "many": 620, "old": 30}
    async with transaction(sessions) as session:
        await session.execute(
            kpi_history.insert(),
            [
                {
                    "kpi_key": key,
                    # "old" published only before its window.
                    "at": now - timedelta(minutes=i + 1, days=3 if key == "old" else 0),
                    "value": float(i),
                    "status": "on_target",
                    "score": 100.0,
                }
                for key, rows in rows_per_kpi.items()
                for i in range(rows)
            ],
        )
    repo = scoring_repositories(sessions).current
    since = {key: now - timedelta(days=1) for key in rows_per_kpi}
    async with sessions() as session:
        together = await repo.trends(session, since, points=TREND_POINTS)
        alone = {key: await repo.recent(session, key, since[key]) for key in rows_per_kpi}
    expected = {
        key: rows[:: max(1, len(rows) // TREND_POINTS)] for key, rows in alone.items() if rows
    }
    assert together == expected
    assert set(together) == {"few", "some", "many"}
    assert len(together["many"]) == len(range(0, 500, 12))


async def test_when_data_began_is_asked_again_only_while_a_window_may_be_partial(
    sessions: Sessions, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Every list reads afresh here, not the one of the same second.
    monkeypatch.setattr(queries_module, "LIST_REUSE_S", 0.0)
    catalog = Catalog.from_definitions([*_catalog(10), make_kpi(key="new")])
    await _seed(sessions, Catalog.from_definitions(list(_catalog(10))), datetime.now(UTC))
    queries = _queries(sessions, catalog)
    counts = []
    for _ in range(2):
        with _counting(sessions) as statements:
            views = await queries.list_kpis()
        counts.append(len(statements))
    partial = {view["key"] for view in views if view["partial"]}
    assert partial == {"new"}
    # The seeded windows are full once seen; "new" has no data yet and is asked again.
    assert counts == [3, 3]
    full = Catalog.from_definitions(list(_catalog(10)))
    queries = _queries(sessions, full)
    counts = []
    for _ in range(2):
        with _counting(sessions) as statements:
            await queries.list_kpis()
        counts.append(len(statements))
    assert counts == [3, 2]


def _linked_catalog(links: int) -> Catalog:
    """A KPI led by ``links`` reported and ``links`` derived KPIs (over computed ones),
    on review periods of their own: each link is correlated on its common period."""
    leaders = [key for i in range(links) for key in (f"entered_{i}", f"derived_{i}")]
    kpis = [make_kpi(key="hub", review_period="month", leading_indicators=leaders)]
    for i in range(links):
        kpis += [
            make_kpi(key=f"counted_{i}", review_period="day"),
            make_kpi(key=f"entered_{i}", formula="reported", review_period="week"),
            make_kpi(
                key=f"derived_{i}",
                formula={"derived": f"counted_{i} + entered_{i}"},
                review_period="week",
            ),
        ]
    return Catalog.from_definitions(kpis)


async def test_a_detail_reads_as_many_statements_for_20_reported_and_derived_links_as_for_2(
    sessions: Sessions,
) -> None:
    counts = []
    for links in (2, 20):
        queries = _queries(sessions, _linked_catalog(links))
        with _counting(sessions) as statements:
            detail = await queries.detail("hub")
        counts.append(len(statements))
        assert len(detail["lead_lag"]) == 2 * links
        assert {row["period"] for row in detail["lead_lag"]} == {"month"}
        assert len(detail["periods"]) == 6
    # Values and trend of the page's KPI, when its data began, buckets, entered values.
    assert counts == [5, 5]


async def test_callers_share_one_reading_of_the_list_each_seeing_only_its_kpis(
    sessions: Sessions, monkeypatch: pytest.MonkeyPatch
) -> None:
    # However slow the machine, both requests fall within one reading's lifetime.
    monkeypatch.setattr(queries_module, "LIST_REUSE_S", 3600.0)
    catalog = _catalog(10)
    await _seed(sessions, catalog, datetime.now(UTC))
    queries = _queries(sessions, catalog)
    with _counting(sessions) as statements:
        everything = await queries.list_kpis()
        some = await queries.list_kpis(lambda kpi: kpi.key in {"kpi_1", "kpi_3"})
    # One reading (values, when data began, trends) for both callers.
    assert len(statements) == 3
    assert [view["key"] for view in some] == ["kpi_1", "kpi_3"]
    # kpi_1 is led by kpi_0, which the second caller may not see.
    led = next(view for view in everything if view["key"] == "kpi_1")
    assert led["leading_indicators"] == ["kpi_0"]
    assert some[0]["leading_indicators"] == []
    assert some[0]["trend"] == led["trend"]
