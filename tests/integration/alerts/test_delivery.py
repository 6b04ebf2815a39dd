"""The delivery worker on the real database: retries with backoff, final errors,
abandoned leases, and staleness / early-warning conditions driven by the scheduler."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.alerts.tables import outbox
from shared.bus.kafka import KafkaPublisher
from shared.contracts.kpi_values import Owner
from shared.identity.domain import mask_target
from tests.integration.alerts.conftest import ADMIN, Harness, kpi_known, produce
from tests.integration.alerts.factories import kpi_value, unique
from tests.integration.alerts.receivers import HttpReceiver, SmtpServer, eventually


async def _row(sessions: async_sessionmaker[AsyncSession], target: str) -> dict[str, object]:
    async with sessions() as session:
        rows = (await session.execute(select(outbox).where(outbox.c.target == target))).all()
    assert len(rows) <= 1
    return dict(rows[0]._mapping) if rows else {}


async def test_5xx_is_retried_with_backoff_until_delivered(
    service: Harness,
    publisher: KafkaPublisher,
    receiver: HttpReceiver,
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    kpi = unique("retry")
    hook = f"{receiver.url}/{kpi}"
    receiver.replies.extend([503, 500])
    await produce(
        publisher,
        service.settings,
        [kpi_value(kpi, 0.0, owners=[Owner(name="A", webhook_url=hook)])],
    )
    requests = await receiver.wait_for(f"/{kpi}", 3)
    assert len(requests) == 3
    row = await eventually(lambda: _sent(sessions, hook))
    assert row["attempts"] == 3 and row["last_error"] is None
    metrics = (await service.client.get("/metrics")).text
    assert 'kpipulse_notifications_failed_total{channel="webhook"}' in metrics


async def _sent(sessions: async_sessionmaker[AsyncSession], target: str) -> dict[str, object]:
    row = await _row(sessions, target)
    return row if row.get("status") == "sent" else {}


async def test_4xx_is_final_and_recorded(
    service: Harness,
    publisher: KafkaPublisher,
    receiver: HttpReceiver,
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    kpi = unique("final")
    hook = f"{receiver.url}/{kpi}"
    receiver.replies.append(410)
    await produce(
        publisher,
        service.settings,
        [kpi_value(kpi, 0.0, owners=[Owner(name="A", webhook_url=hook)])],
    )

    async def failed() -> dict[str, object]:
        row = await _row(sessions, hook)
        return row if row.get("status") == "failed" else {}

    row = await eventually(failed)
    assert row["attempts"] == 1
    assert "410" in str(row["last_error"])
    await asyncio.sleep(0.5)
    assert len(receiver.on_path(f"/{kpi}")) == 1
    history = await service.client.get(
        "/v1/notifications", params={"status": "failed"}, headers=ADMIN
    )
    assert history.status_code == 200, history.text
    # Webhook URLs are write-only: even an admin sees the host only.
    assert mask_target(hook, admin=True) in [n["target"] for n in history.json()]
    assert all(hook not in str(n) for n in history.json())


async def test_an_abandoned_lease_is_resent_once_and_counted(
    service: Harness,
    publisher: KafkaPublisher,
    smtp: SmtpServer,
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    # Simulate a worker that died mid-send: the row is 'sending' with a lease in the past.
    kpi = unique("lease")
    mail = f"{kpi}@example.com"
    await produce(
        publisher, service.settings, [kpi_value(kpi, 0.0, owners=[Owner(name="A", email=mail)])]
    )
    await smtp.wait_for(mail, 1)
    expired = service.clock() - timedelta(seconds=1)
    async with sessions() as session, session.begin():
        await session.execute(
            update(outbox)
            .where(outbox.c.target == mail)
            .values(status="sending", lease_until=expired, claim_token="dead-worker")
        )
    await service.worker.run_once()
    await smtp.wait_for(mail, 2)
    row = await _row(sessions, mail)
    assert row["status"] == "sent" and row["uncertain_resends"] == 1
    metrics = (await service.client.get("/metrics")).text
    assert 'kpipulse_notifications_uncertain_total{channel="email"} 1.0' in metrics


async def test_stale_kpi_alerts_and_a_fresh_value_resolves(
    service: Harness,
    publisher: KafkaPublisher,
    smtp: SmtpServer,
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    kpi = unique("stale")
    mail = f"{kpi}@example.com"
    owner = Owner(name="A", email=mail)
    await produce(
        publisher, service.settings, [kpi_value(kpi, 0.15, owners=[owner], update_every_s=60)]
    )
    await eventually(lambda: kpi_known(sessions, kpi))
    # The clock is wall time plus an offset: leave room for real seconds passing on a
    # loaded machine between the value's arrival and the check.
    service.clock.advance(90)
    await service.scheduler.run_once()
    await asyncio.sleep(0.3)
    assert smtp.mails_to(mail) == []  # one missed refresh is not an incident
    service.clock.advance(39)
    await service.scheduler.run_once()
    await service.scheduler.run_once()
    (stale,) = await smtp.wait_for(mail, 1)
    assert "has no fresh value" in stale.subject
    await produce(
        publisher, service.settings, [kpi_value(kpi, 0.16, owners=[owner], update_every_s=60)]
    )
    mails = await smtp.wait_for(mail, 2)
    assert mails[1].subject.startswith("[RESOLVED]")


async def test_kpi_whose_data_never_came_goes_stale(
    service: Harness,
    publisher: KafkaPublisher,
    smtp: SmtpServer,
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    """A new KPI announced with no data is stale two update periods after it appeared."""
    kpi = unique("never")
    mail = f"{kpi}@example.com"
    owner = Owner(name="A", email=mail)
    await produce(
        publisher, service.settings, [kpi_value(kpi, None, owners=[owner], update_every_s=60)]
    )
    await eventually(lambda: kpi_known(sessions, kpi))
    service.clock.advance(90)
    await service.scheduler.run_once()
    await asyncio.sleep(0.3)
    assert smtp.mails_to(mail) == []  # within two update periods of its creation
    service.clock.advance(39)
    await service.scheduler.run_once()
    (stale,) = await smtp.wait_for(mail, 1)
    assert "has no fresh value" in stale.subject
    # Its first value ends the episode.
    await produce(
        publisher, service.settings, [kpi_value(kpi, 0.16, owners=[owner], update_every_s=60)]
    )
    mails = await smtp.wait_for(mail, 2)
    assert mails[1].subject.startswith("[RESOLVED]")


async def test_leading_indicator_in_breach_is_an_early_warning(
    service: Harness, publisher: KafkaPublisher, smtp: SmtpServer
) -> None:
    kpi = unique("revenue")
    mail = f"{kpi}@example.com"
    owner = Owner(name="A", email=mail)
    warn = kpi_value(kpi, 0.15, owners=[owner], leading_in_breach=["qualified_leads"])
    await produce(publisher, service.settings, [warn])
    (mail_received,) = await smtp.wait_for(mail, 1)
    assert "leading indicator" in mail_received.subject
    assert "qualified_leads" in mail_received.part("text/plain")
