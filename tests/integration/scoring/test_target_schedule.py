"""A target schedule changes a KPI's status at the period boundary (scoring's clock
moved across it), and the KPI value message carries the step in force."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import httpx
import pytest
from prometheus_client import CollectorRegistry
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from services.scoring import bootstrap
from services.scoring.domain.periods import next_period_start, period_start
from shared.bootstrap import Adapters
from shared.bus.factory import create_publisher
from shared.contracts.kpi_values import KpiValueMessage
from shared.settings import Settings
from tests.conftest import ADMIN_TOKEN
from tests.integration.scoring.conftest import CATALOG, eventually
from tests.integration.scoring.test_pipeline import read_topic
from tests.integration.scoring.test_reported import kpi_view

ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
UTC_TZ = ZoneInfo("UTC")
THIS_MONTH = period_start(datetime.now(UTC), "month", UTC_TZ)
NEXT_MONTH = next_period_start(THIS_MONTH, "month", UTC_TZ)
SCHEDULED = f"""
- key: staff_turnover
  name: Staff turnover
  objective: Keep the people who build the product
  perspective: learning_growth
  stage: retain
  department: hr
  owners: [{{name: Hoa, email: hoa@example.com}}]
  formula: reported
  window: 31d
  update_every: 1s
  review_period: month
  unit: ratio
  direction: lower_is_better
  minimum: 0.05
  target: 0.02
  targets:
    - {{from: {NEXT_MONTH.date().isoformat()}, minimum: 0.025, target: 0.01}}
  weight: 2
  expires_on: 2030-01-01
  indicator: lagging
  tracking_cost: {{amount: 0, currency: VND, per: month}}
  data_collection: payroll
"""


class MovableClock:
    def __init__(self) -> None:
        self.offset = timedelta(0)

    def __call__(self) -> datetime:
        return datetime.now(UTC) + self.offset


@pytest.fixture
def clock() -> MovableClock:
    return MovableClock()


@pytest.fixture
async def scheduled_app(
    scoring_settings: Settings,
    scoring_db: tuple[AsyncEngine, async_sessionmaker[AsyncSession]],
    clock: MovableClock,
) -> AsyncIterator[httpx.AsyncClient]:
    engine, sessions = scoring_db
    path = scoring_settings.scoring.catalog_path
    assert path is not None
    path.write_text(CATALOG + SCHEDULED)
    adapters = Adapters(
        kafka=scoring_settings.kafka,
        engine=engine,
        sessions=sessions,
        publisher=create_publisher(scoring_settings.kafka, client_id="test-scoring"),
        registry=CollectorRegistry(),
    )
    app = bootstrap.build(scoring_settings, adapters, clock=clock)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://scoring") as client:
            yield client


async def test_the_status_changes_when_the_next_step_starts(
    scoring_settings: Settings, scheduled_app: httpx.AsyncClient, clock: MovableClock
) -> None:
    client = scheduled_app
    entered = await client.post(
        "/v1/kpis/staff_turnover/values",
        json={"period_start": THIS_MONTH.date().isoformat(), "value": 0.03},
        headers=ADMIN,
    )
    assert entered.status_code == 201, entered.text
    before = await eventually(lambda: kpi_view(client, "staff_turnover", value=0.03))
    assert (before["status"], before["minimum"]) == ("below_target", 0.05)

    # Just past the boundary: this month's value is now the last period's, judged by the
    # new step (0.03 is worse than its minimum 0.025).
    clock.offset = NEXT_MONTH - datetime.now(UTC) + timedelta(minutes=1)
    values_topic = scoring_settings.kafka.topics().kpi_values

    async def breach() -> KpiValueMessage | None:
        messages = await read_topic(scoring_settings, values_topic, 1)
        parsed = [KpiValueMessage.from_bytes(m.value) for m in messages]
        return next(
            (p for p in parsed if p.kpi_key == "staff_turnover" and p.status == "breach"), None
        )

    message = await eventually(breach, timeout=45)
    assert (message.value, message.minimum, message.target) == (0.03, 0.025, 0.01)
    assert message.as_of >= NEXT_MONTH
    # The period analysis judges this month by its own target still.
    detail = (await client.get("/v1/kpis/staff_turnover", headers=ADMIN)).json()
    rows = {row["period_start"][:10]: row for row in detail["periods"]}
    assert rows[THIS_MONTH.date().isoformat()]["expected"] == 0.02
