"""A reported KPI whose period ended without a value: its owners are reminded once."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from shared.bus.kafka import KafkaPublisher
from shared.contracts.kpi_values import KpiValueMessage, Owner
from tests.conftest import ADMIN_TOKEN
from tests.integration.alerts.conftest import Harness, kpi_known, produce
from tests.integration.alerts.factories import kpi_value, unique
from tests.integration.alerts.receivers import SmtpServer, eventually

NOVEMBER = datetime(2026, 11, 1, tzinfo=UTC)
DECEMBER = datetime(2026, 12, 1, tzinfo=UTC)

ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


async def test_a_missing_value_is_reminded_once_per_period(
    service: Harness,
    publisher: KafkaPublisher,
    smtp: SmtpServer,
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    kpi = unique("turnover")
    mail = f"{kpi}@example.com"
    owners = [Owner(name="Hoa", email=mail)]
    start = datetime.now(UTC) - timedelta(minutes=10)

    def message(minute: int, value: float | None, due: datetime | None) -> KpiValueMessage:
        return kpi_value(
            kpi, value, owners=owners, as_of=start + timedelta(minutes=minute)
        ).model_copy(update={"value_due_period": due})

    # November is due, and stays due over several messages and scheduler rounds.
    await produce(publisher, service.settings, [message(0, None, NOVEMBER)])
    await produce(publisher, service.settings, [message(1, None, NOVEMBER)])
    await eventually(lambda: kpi_known(sessions, kpi))
    (reminder,) = await smtp.wait_for(mail, 1)
    assert "has no value for its last period" in reminder.subject
    for _ in range(2):
        service.clock.advance(service.settings.alerts.repeat_interval_s + 1)
        await service.scheduler.run_once()

    # The value is entered: nothing is due any more, and no notice says so.
    await produce(publisher, service.settings, [message(2, 0.15, None)])

    async def no_open_reminder() -> bool:
        listed = await service.client.get("/v1/alerts", params={"kpi_key": kpi}, headers=ADMIN)
        rows = listed.json()
        return bool(rows) and all(row["state"] == "resolved" for row in rows)

    await eventually(no_open_reminder)
    await asyncio.sleep(1.0)
    assert len(smtp.mails_to(mail)) == 1

    # December ends without a value, then the owner is asked again, once.
    await produce(publisher, service.settings, [message(3, None, DECEMBER)])
    await produce(publisher, service.settings, [message(4, None, DECEMBER)])
    await smtp.wait_for(mail, 2)
    await asyncio.sleep(1.0)
    assert len(smtp.mails_to(mail)) == 2
    rows = (await service.client.get("/v1/alerts", params={"kpi_key": kpi}, headers=ADMIN)).json()
    assert sorted(row["condition"] for row in rows) == ["value_due", "value_due"]
