"""A derived KPI on the real broker and database follows its inputs, judged by the
step of its target schedule in force."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from shared.settings import Settings
from tests.conftest import ADMIN_TOKEN
from tests.integration.scoring.conftest import eventually
from tests.integration.scoring.test_pipeline import as_record, event, publish
from tests.integration.scoring.test_reported import REPORTED, app_with, kpi_view, month_start

ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
# Revenue (summed from CRM payments, USD) over the payroll's headcount (reported monthly).
DERIVED = """
- key: headcount
  name: Headcount
  objective: Know how many people we are
  perspective: learning_growth
  stage: engage
  department: hr
  owners: [{name: Hoa, email: hoa@example.com}]
  formula: reported
  window: 31d
  update_every: 1s
  review_period: month
  unit: people
  direction: higher_is_better
  minimum: 1
  target: 10
  weight: 1
  expires_on: 2030-01-01
  indicator: leading
  tracking_cost: {amount: 0, currency: VND, per: month}
  data_collection: payroll
- key: revenue_per_head
  name: Revenue per employee
  objective: Grow without growing costs as fast
  perspective: financial
  stage: financial
  department: finance
  owners: [{name: Lan, email: lan@example.com}]
  formula: {derived: "revenue / headcount"}
  window: 30d
  update_every: 1s
  review_period: month
  unit: USD per person
  currency: USD
  direction: higher_is_better
  minimum: 10          # before the schedule: never in force in this test
  target: 20
  targets:
    - {from: 2000-01-01, minimum: 50, target: 100}
    - {from: 2999-01-01, minimum: 500, target: 1000}
  weight: 1
  expires_on: 2030-01-01
  indicator: lagging
  tracking_cost: {amount: 0, currency: USD, per: month}
  data_collection: computed from revenue and headcount
- key: headcount_growth
  name: Headcount growth
  objective: Grow the team with the business
  perspective: learning_growth
  stage: engage
  department: hr
  owners: [{name: Hoa, email: hoa@example.com}]
  formula: {derived: "(headcount - previous(headcount)) / previous(headcount)"}
  window: 31d
  update_every: 1s
  review_period: month
  unit: ratio
  direction: higher_is_better
  minimum: 0
  target: 0.1
  weight: 1
  expires_on: 2030-01-01
  indicator: leading
  tracking_cost: {amount: 0, currency: VND, per: month}
  data_collection: computed from the reported headcount
"""


@pytest.fixture
async def derived_app(
    scoring_settings: Settings,
    scoring_db: tuple[AsyncEngine, async_sessionmaker[AsyncSession]],
) -> AsyncIterator[httpx.AsyncClient]:
    async with app_with(scoring_settings, scoring_db, REPORTED + DERIVED) as client:
        yield client


async def test_a_derived_kpi_follows_its_inputs(
    scoring_settings: Settings, derived_app: httpx.AsyncClient
) -> None:
    client = derived_app
    # No headcount yet: no data, never a fake value.
    view = await eventually(lambda: kpi_view(client, "revenue_per_head", status="no_data"))
    assert view["value"] is None and view["currency"] == "USD"

    await publish(
        scoring_settings,
        [as_record(event("crm", "payment_received", value=v)) for v in (300.0, 300.0)],
    )
    entered = await client.post(
        "/v1/kpis/headcount/values",
        json={"period_start": month_start(0).isoformat(), "value": 8},
        headers=ADMIN,
    )
    assert entered.status_code == 201, entered.text
    first = await eventually(lambda: kpi_view(client, "revenue_per_head", value=75.0))
    # Judged by the step of the schedule in force today.
    assert first["status"] == "below_target" and first["score"] == 50.0
    assert (first["minimum"], first["target"]) == (50.0, 100.0)
    # Revenue's data began minutes ago: the derived value is as partial as that input.
    assert first["partial"] is True

    # More revenue: the derived KPI follows.
    await publish(scoring_settings, [as_record(event("crm", "payment_received", value=200.0))])
    followed = await eventually(lambda: kpi_view(client, "revenue_per_head", value=100.0))
    assert followed["status"] == "on_target"

    # Growth against the previous period: last month's headcount entered too.
    await client.post(
        "/v1/kpis/headcount/values",
        json={"period_start": month_start(1).isoformat(), "value": 5},
        headers=ADMIN,
    )
    growth = await eventually(lambda: kpi_view(client, "headcount_growth", value=0.6))
    assert growth["status"] == "on_target"

    # A derived KPI over an unknown KPI is refused, naming it.
    shown = await client.get("/v1/kpis/revenue_per_head", headers=ADMIN)
    definition = shown.json()["definition"]
    ghostly = {**definition, "key": "ghost_ratio", "formula": {"derived": "revenue / ghost"}}
    refused = await client.post("/v1/kpis", json=ghostly, headers=ADMIN)
    assert refused.status_code == 422
    assert "kpi 'ghost_ratio': formula.derived: unknown KPI 'ghost'" in refused.text
