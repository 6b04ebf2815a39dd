"""Reported KPIs on the real broker and database: values entered by API and CSV are
scored, published, analysed per period, corrected with history, and reminded when due."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
import pytest
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from services import cli
from services.scoring.catalog_service import CatalogService, file_source
from services.scoring.domain.catalog import parse_catalog
from services.scoring.domain.periods import period_start
from services.scoring.repository import ScoringRepositories
from services.scoring.tables import kpi_changes
from shared.contracts.kpi_values import KpiValueMessage
from shared.settings import Settings
from tests.conftest import ADMIN_TOKEN
from tests.integration.scoring.conftest import CATALOG, build_app, eventually
from tests.integration.scoring.test_pipeline import read_topic

ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
REPORTED = """
- key: staff_turnover
  name: Staff turnover
  objective: Keep the people who build the product
  perspective: learning_growth
  stage: retain
  department: hr
  owners: [{name: Hoa, email: hoa@example.com}]
  formula: reported
  window: 31d
  update_every: 1s
  review_period: month
  unit: ratio
  direction: lower_is_better
  minimum: 0.05
  target: 0.02
  weight: 2
  expires_on: 2030-01-01
  indicator: lagging
  tracking_cost: {amount: 0, currency: VND, per: month}
  data_collection: Leavers over headcount, from the payroll, entered by HR each month
"""


def month_start(months_back: int) -> date:
    start = period_start(datetime.now(UTC), "month", ZoneInfo("UTC"))
    for _ in range(months_back):
        start = period_start(start - timedelta(days=1), "month", ZoneInfo("UTC"))
    return start.date()


@asynccontextmanager
async def app_with(
    settings: Settings,
    db: tuple[AsyncEngine, async_sessionmaker[AsyncSession]],
    extra_catalog: str,
) -> AsyncIterator[httpx.AsyncClient]:
    """Scoring with the test catalog plus ``extra_catalog``, whose KPIs have existed for
    months (so reported values are due)."""
    engine, sessions = db
    path = settings.scoring.catalog_path
    assert path is not None
    path.write_text(CATALOG + extra_catalog)
    repositories = ScoringRepositories.for_dialect("postgresql")
    service = CatalogService(sessions, repositories.catalog, repositories.buckets)
    await service.apply_file(
        parse_catalog(path.read_text()), source=file_source(path), actor="test"
    )
    async with sessions() as session, session.begin():
        await session.execute(
            update(kpi_changes).values(at=datetime.now(UTC) - timedelta(days=100))
        )
    app = build_app(settings, engine, sessions)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://scoring") as client:
            yield client


@pytest.fixture
async def reported_app(
    scoring_settings: Settings,
    scoring_db: tuple[AsyncEngine, async_sessionmaker[AsyncSession]],
) -> AsyncIterator[httpx.AsyncClient]:
    async with app_with(scoring_settings, scoring_db, REPORTED) as client:
        yield client


async def kpi_view(
    client: httpx.AsyncClient, key: str, **wanted: object
) -> dict[str, object] | None:
    """The KPI as listed, once it shows ``wanted``."""
    listing = (await client.get("/v1/kpis", headers=ADMIN)).json()["kpis"]
    view: dict[str, object] = next(k for k in listing if k["key"] == key)
    return view if all(view.get(k) == v for k, v in wanted.items()) else None


async def test_entered_values_are_scored_published_corrected_and_analysed(
    scoring_settings: Settings, reported_app: httpx.AsyncClient
) -> None:
    client = reported_app
    values_topic = scoring_settings.kafka.topics().kpi_values
    last = month_start(1).isoformat()

    async def turnover_message(**wanted: object) -> KpiValueMessage | None:
        messages = await read_topic(scoring_settings, values_topic, 1)
        parsed = [KpiValueMessage.from_bytes(m.value) for m in messages]
        return next(
            (
                p for p in parsed
                if p.kpi_key == "staff_turnover"
                and all(getattr(p, k) == v for k, v in wanted.items())
            ),
            None,
        )

    # Nothing entered for last month: no data, and last month's value is due.
    due = await eventually(lambda: turnover_message(status="no_data"), timeout=45)
    assert due.value_due_period is not None
    assert due.value_due_period.date().isoformat() == last
    assert due.coverage == 1.0

    # By API: worse than the minimum is a breach, published for alerts to act on.
    entered = await client.post(
        "/v1/kpis/staff_turnover/values",
        json={"period_start": last, "value": 0.08, "note": "two leavers"},
        headers=ADMIN,
    )
    assert entered.status_code == 201, entered.text
    assert entered.json()["corrected"] is False
    breach = await eventually(lambda: turnover_message(status="breach"), timeout=45)
    assert (breach.value, breach.value_due_period, breach.partial) == (0.08, None, False)
    view = await eventually(lambda: kpi_view(client, "staff_turnover", status="breach"))
    assert view["value"] == 0.08 and view["score"] == 0.0
    assert (view["coverage"], view["partial"]) == (1.0, False)  # entered whole

    # By CSV: a correction of last month and the month before; history keeps the old value.
    csv = (
        "kpi_key,period_start,value,note\n"
        f"staff_turnover,{last},0.01,payroll corrected\n"
        f"staff_turnover,{month_start(2).isoformat()},0.03,\n"
    )
    imported = await client.post(
        "/v1/values/import", content=csv, headers={**ADMIN, "Content-Type": "text/csv"}
    )
    assert imported.status_code == 200, imported.text
    assert imported.json()["imported"] == 2
    assert imported.json()["values"][0]["previous"] == 0.08
    await eventually(lambda: turnover_message(status="on_target", value=0.01), timeout=45)
    listing = (await client.get("/v1/kpis/staff_turnover/values", headers=ADMIN)).json()
    assert [c["new_value"] for c in listing["changes"]] == [0.03, 0.01, 0.08]
    correction = listing["changes"][1]
    assert (correction["old_value"], correction["by"], correction["period_start"]) == (
        0.08, "admin", last
    )

    # Period analysis and history use the entered values.
    detail = (await client.get("/v1/kpis/staff_turnover", headers=ADMIN)).json()
    periods = {p["period_start"][:10]: p for p in detail["periods"]}
    assert periods[last]["actual"] == 0.01 and periods[last]["expected"] == 0.02
    assert periods[last]["previous"] == 0.03
    history = (await client.get("/v1/kpis/staff_turnover/history", headers=ADMIN)).json()
    assert history["points"][-1]["value"] == 0.01

    # The scorecard counts it in learning & growth.
    card = (await client.get("/v1/scorecard", headers=ADMIN)).json()
    people = next(p for p in card["perspectives"] if p["perspective"] == "learning_growth")
    assert people["scored"] == ["staff_turnover"] and people["score"] == 100.0


async def test_refusals_name_the_problem(reported_app: httpx.AsyncClient) -> None:
    client = reported_app
    last = month_start(1).isoformat()
    body = {"period_start": last, "value": 0.03}
    url = "/v1/kpis/staff_turnover/values"
    assert (await client.post(url, json=body)).status_code == 401
    unknown = await client.post("/v1/kpis/nope/values", json=body, headers=ADMIN)
    assert unknown.status_code == 404 and "nope" in unknown.text
    computed = await client.post("/v1/kpis/revenue/values", json=body, headers=ADMIN)
    assert computed.status_code == 422
    assert "formula is sum, not reported" in computed.text
    mid_month = await client.post(
        url, json={**body, "period_start": last[:8] + "15"}, headers=ADMIN
    )
    assert mid_month.status_code == 422 and f"that month starts on {last}" in mid_month.text
    future = (datetime.now(UTC) + timedelta(days=40)).date().replace(day=1).isoformat()
    ahead = await client.post(url, json={**body, "period_start": future}, headers=ADMIN)
    assert ahead.status_code == 422 and "has not begun" in ahead.text
    nan = await client.post(
        url,
        content=f'{{"period_start": "{last}", "value": NaN}}',
        headers={**ADMIN, "Content-Type": "application/json"},
    )
    assert nan.status_code == 422 and "value: must be a finite number" in nan.text

    bad_csv = f"kpi_key,period_start,value\nstaff_turnover,{last},x\nghost,{last},1\n"
    refused = await client.post(
        "/v1/values/import", content=bad_csv, headers={**ADMIN, "Content-Type": "text/csv"}
    )
    assert refused.status_code == 422
    assert refused.json()["detail"]["problems"] == [
        "line 2: value: 'x' is not a number",
        "line 3: kpi_key: unknown KPI 'ghost'",
    ]
    wrong_type = await client.post(
        "/v1/values/import", content=bad_csv, headers={**ADMIN, "Content-Type": "image/png"}
    )
    assert wrong_type.status_code == 415
    anonymous = await client.post(
        "/v1/values/import", content=bad_csv, headers={"Content-Type": "text/csv"}
    )
    assert anonymous.status_code == 401
    listing = await client.get("/v1/kpis/revenue/values", headers=ADMIN)
    assert listing.status_code == 422 and "not reported" in listing.text
    assert (await client.get("/v1/kpis/nope/values", headers=ADMIN)).status_code == 404
    # Nothing of the refused file was stored.
    stored = await client.get("/v1/kpis/staff_turnover/values", headers=ADMIN)
    assert stored.json()["values"] == []


async def test_kpipulse_values_import_enters_a_file(
    scoring_settings: Settings,
    reported_app: httpx.AsyncClient,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("KPIPULSE_DATABASE__URL", scoring_settings.database.url)
    earlier = month_start(3).isoformat()
    good = tmp_path / "values.csv"
    good.write_text(f"kpi_key,period_start,value,note\nstaff_turnover,{earlier},0.04,survey\n")
    assert await asyncio.to_thread(cli.main, ["values", "import", str(good), "--actor", "hoa"]) == 0
    assert "1 values imported" in capsys.readouterr().out
    listing = (await reported_app.get("/v1/kpis/staff_turnover/values", headers=ADMIN)).json()
    assert [(v["period_start"], v["value"], v["entered_by"]) for v in listing["values"]] == [
        (earlier, 0.04, "hoa")
    ]

    bad = tmp_path / "bad.csv"
    bad.write_text(f"kpi_key,period_start,value\nstaff_turnover,{earlier[:8]}09,1\n")
    assert await asyncio.to_thread(cli.main, ["values", "import", str(bad)]) == 1
    error = capsys.readouterr().err
    assert "nothing imported" in error and f"that month starts on {earlier}" in error
