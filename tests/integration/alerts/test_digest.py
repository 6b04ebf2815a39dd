"""The weekly digest on PostgreSQL: its content from stored facts and alert history, sent
once per week and scope even when the service restarts between writing and sending."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.alerts.channels.base import Sender
from services.alerts.channels.smtp import SmtpSender
from services.alerts.digest import DigestService
from services.alerts.repository import KpiLatest, KpiRepository
from services.alerts.tables import alerts
from shared.db.engine import transaction
from shared.i18n import LocalePolicy
from shared.settings import Settings
from tests.integration.alerts.receivers import SmtpServer

pytestmark = pytest.mark.integration

TZ = "Asia/Ho_Chi_Minh"
# Monday 4 February 2030, 09:00 in Hanoi: the week of 28 January is due.
MONDAY_9AM = datetime(2030, 2, 4, 2, tzinfo=UTC)


class Recorder:
    """A channel that keeps what it was asked to send (Slack here)."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, dict[str, Any]]] = []

    async def send(self, target: str, payload: dict[str, Any]) -> None:
        self.sent.append((target, payload))

    async def close(self) -> None:
        return None


class MovableClock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def latest(key: str, department: str, owners: list[dict[str, Any]], value: float,
           status: str, score: float | None, expires_on: date | None) -> KpiLatest:
    return KpiLatest(
        kpi_key=key, name=f"KPI {key}", value=value, status=status, minimum=100.0,
        target=200.0, direction="higher_is_better", owners=owners, expires_on=expires_on,
        update_every_s=60, leading_in_breach=[], as_of=MONDAY_9AM, last_seen_at=MONDAY_9AM,
        last_value_at=MONDAY_9AM, department=department, unit="VND", score=score,
    )


def service(
    settings: Settings,
    sessions: async_sessionmaker[AsyncSession],
    senders: Mapping[str, Sender],
    clock: MovableClock,
    locale: str,
) -> DigestService:
    return DigestService(
        sessions=sessions,
        senders=senders,
        settings=settings.alerts,
        locales=LocalePolicy(locale, TZ),
        time_zone=TZ,
        clock=clock,
    )


async def test_weekly_digest_content_and_once_per_week_across_restarts(
    alerts_settings: Settings, sessions: async_sessionmaker[AsyncSession], smtp: SmtpServer
) -> None:
    tag = uuid.uuid4().hex[:8]
    department = f"dept_{tag}"
    reader = f"head-{tag}@example.com"
    owner = {"name": f"Lan {tag}", "email": f"lan-{tag}@example.com",
             "slack_webhook_url": f"https://hooks.example/{tag}"}
    cfg = alerts_settings.alerts.model_copy(
        update={"digest": alerts_settings.alerts.digest.model_copy(
            update={"department_emails": {department: [reader]}}
        )}
    )
    settings = alerts_settings.model_copy(update={"alerts": cfg})
    revenue, cost = f"revenue_{tag}", f"cost_{tag}"
    async with transaction(sessions) as session:
        repo = KpiRepository()
        await repo.save(session, latest(revenue, department, [owner], 1234567.0, "breach", 0.0,
                                        date(2030, 2, 10)))
        await repo.save(session, latest(cost, department, [owner], 150.0, "below_target", 50.0,
                                        date(2031, 1, 1)))
        # A breach that fired during the week (and one resolved before it: not listed).
        await session.execute(alerts.insert(), [
            {"kpi_key": revenue, "condition": "below_minimum", "severity": "critical",
             "state": "firing", "dedupe_key": f"{revenue}:w", "open_key": f"{revenue}:bm",
             "value": 1234567.0, "started_at": datetime(2030, 1, 30, 3, tzinfo=UTC),
             "fired_at": datetime(2030, 1, 30, 3, tzinfo=UTC), "resolved_at": None},
            {"kpi_key": cost, "condition": "below_minimum", "severity": "critical",
             "state": "resolved", "dedupe_key": f"{cost}:old", "open_key": None, "value": 1.0,
             "started_at": datetime(2030, 1, 1, tzinfo=UTC),
             "fired_at": datetime(2030, 1, 1, tzinfo=UTC),
             "resolved_at": datetime(2030, 1, 2, tzinfo=UTC)},
        ])

    clock = MovableClock(MONDAY_9AM)
    slack = Recorder()
    senders: dict[str, Sender] = {"email": SmtpSender(settings.alerts.smtp), "slack": slack}

    # The first instance writes the week's digests, then dies before sending any.
    first = service(settings, sessions, senders, clock, "vi")
    assert await first.enqueue_due() > 0
    assert smtp.mails_to(reader) == [] and slack.sent == []

    # After the restart, a new instance sends each once; a second round sends nothing.
    second = service(settings, sessions, senders, clock, "vi")
    await second.run_once()
    clock.now += timedelta(hours=3)
    await second.run_once()
    await service(settings, sessions, senders, clock, "vi").run_once()

    (department_mail,) = await smtp.wait_for(reader, 1)
    (owner_mail,) = await smtp.wait_for(owner["email"], 1)
    assert [t for t, _ in slack.sent].count(owner["slack_webhook_url"]) == 1
    expected = f"[KPI Pulse] Bản tin tuần: {department}, từ 28 thg 1, 2030 đến 3 thg 2, 2030"
    assert department_mail.subject == expected
    text = department_mail.part("text/plain")
    assert f"KPI {revenue}: 1.234.567\xa0₫ · Vi phạm · điểm 0" in text
    assert f"KPI {revenue}: dưới mức tối thiểu từ" in text
    assert f"KPI {cost}: dưới mức" not in text  # resolved before the week began
    assert f"KPI {revenue}: hết hạn vào 10 thg 2, 2030" in text
    assert "Chưa có số liệu tuần trước để so sánh." in text
    assert f"?department={department}&lang=vi" in text
    owner_text = owner_mail.part("text/plain")
    assert f"KPI {revenue}" in owner_text and f"KPI {cost}" in owner_text

    # The next week: one new digest each, and what moved since the last one.
    async with transaction(sessions) as session:
        await KpiRepository().save(session, latest(revenue, department, [owner], 2469134.0,
                                                   "on_target", 100.0, date(2030, 2, 10)))
    clock.now = MONDAY_9AM + timedelta(days=7)
    await service(settings, sessions, senders, clock, "vi").run_once()
    await service(settings, sessions, senders, clock, "vi").run_once()
    mails = await smtp.wait_for(reader, 2)
    assert len(mails) == 2
    assert f"KPI {revenue}: 1.234.567\xa0₫ → 2.469.134\xa0₫ (+100 %)" in mails[1].part("text/plain")
    assert [t for t, _ in slack.sent].count(owner["slack_webhook_url"]) == 2
