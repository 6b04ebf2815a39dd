"""Expiry is a date on the company's calendar (KPIPULSE_TIME_ZONE), not on UTC's, and
notices tell the time there."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from shared.bus.kafka import KafkaPublisher
from shared.contracts.kpi_values import Owner
from shared.settings import Settings
from tests.integration.alerts.conftest import Harness, kpi_known, produce, running_service
from tests.integration.alerts.factories import kpi_value, unique
from tests.integration.alerts.receivers import SmtpServer, eventually

# UTC+14 all year: from 10:00 UTC on, its date is already tomorrow's.
KIRITIMATI = "Pacific/Kiritimati"


@pytest.fixture
async def service(
    alerts_settings: Settings, sessions: async_sessionmaker[AsyncSession]
) -> AsyncIterator[Harness]:
    settings = alerts_settings.model_copy(update={"time_zone": KIRITIMATI})
    async with running_service(settings, sessions) as harness:
        yield harness


async def test_expiry_follows_the_company_calendar(
    service: Harness,
    publisher: KafkaPublisher,
    smtp: SmtpServer,
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    now = service.clock()
    if now.hour < 12:  # make the two calendars disagree (and stay so while the test runs)
        service.clock.advance((12 - now.hour) * 3600)
        now = service.clock()
    utc_today = now.date()
    assert now.astimezone(ZoneInfo(KIRITIMATI)).date() == utc_today + timedelta(days=1)

    kpi = unique("calendar")
    mail = f"{kpi}@example.com"
    # Its last day is today in UTC, but that day is over in the company's time zone.
    message = kpi_value(kpi, 0.15, owners=[Owner(name="An", email=mail)], expires_on=utc_today)
    await produce(publisher, service.settings, [message])
    await eventually(lambda: kpi_known(sessions, kpi))
    await service.scheduler.run_once()
    (received,) = await smtp.wait_for(mail, 1)
    assert "has expired" in received.subject
    # The notice tells the time on the company's calendar too.
    assert "+14:00" in received.part("text/plain")
