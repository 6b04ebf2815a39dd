"""An expired KPI is shown with its value, flagged, and left out of the scorecard."""

from __future__ import annotations

import httpx
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from services.scoring.tables import kpi_current
from shared.settings import Settings
from tests.integration.scoring.conftest import eventually
from tests.integration.scoring.test_catalog_ownership import ADMIN, definition
from tests.integration.scoring.test_pipeline import as_record, event, publish


async def test_expired_kpi_is_flagged_and_not_in_the_scorecard(
    scoring_settings: Settings,
    scoring_db: tuple[AsyncEngine, async_sessionmaker[AsyncSession]],
    scoring_app: httpx.AsyncClient,
) -> None:
    # Two KPIs counting the same events; one was set for a period that is over.
    for key, expires_on in (("lapsed", "2020-01-31"), ("current", "2030-01-01")):
        made = await scoring_app.put(
            f"/v1/kpis/{key}",
            json=definition(key, perspective="learning_growth", expires_on=expires_on),
            headers=ADMIN,
        )
        assert made.status_code == 200, made.text
    await publish(scoring_settings, [as_record(event("support", "complaint_received"))])
    _, sessions = scoring_db

    async def valued() -> bool:
        async with sessions() as session:
            rows = (await session.execute(select(kpi_current))).mappings().all()
        return {"lapsed", "current"} <= {r["kpi_key"] for r in rows if r["value"] is not None}

    await eventually(valued)
    kpis = {k["key"]: k for k in (await scoring_app.get("/v1/kpis", headers=ADMIN)).json()["kpis"]}
    assert kpis["lapsed"]["expired"] is True and kpis["lapsed"]["value"] == 1.0
    assert kpis["lapsed"]["expires_in_days"] < 0 and kpis["lapsed"]["expiring_soon"] is False
    assert kpis["current"]["expired"] is False and kpis["current"]["expires_in_days"] > 14
    detail = (await scoring_app.get("/v1/kpis/lapsed", headers=ADMIN)).json()
    assert detail["kpi"]["expired"] is True

    card = (await scoring_app.get("/v1/scorecard", headers=ADMIN)).json()
    [learning] = [p for p in card["perspectives"] if p["perspective"] == "learning_growth"]
    assert learning["scored"] == ["current"]
    assert learning["expired"] == ["lapsed"]
    assert set(learning["kpis"]) == {"current", "lapsed"}
    assert learning["weight"] == kpis["current"]["weight"]
