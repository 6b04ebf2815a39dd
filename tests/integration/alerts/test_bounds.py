"""Alerts against hostile values on the real stack: a message it could not store is
dead-lettered and the partition moves on; an owner nobody can reach is a visible,
counted notification; a silence cannot end where no column can store it."""

from __future__ import annotations

import orjson
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.alerts.tables import kpi_latest
from shared.bus.dlq import describe
from shared.bus.kafka import KafkaPublisher
from shared.bus.ports import OutgoingRecord
from shared.contracts.kpi_values import Owner
from shared.db.engine import transaction
from tests.integration.alerts.conftest import ADMIN, Harness, kpi_known, produce
from tests.integration.alerts.factories import kpi_value, series, unique
from tests.integration.alerts.receivers import SmtpServer, eventually
from tests.support.kafka import consume_matching


async def test_a_name_too_long_to_store_is_dead_lettered_and_the_next_value_applied(
    service: Harness, publisher: KafkaPublisher, sessions: async_sessionmaker[AsyncSession]
) -> None:
    kpi = unique("longname")
    topics = service.settings.kafka.topics()
    raw = orjson.loads(kpi_value(kpi, 0.15).to_bytes())
    hostile = orjson.dumps({**raw, "name": "n" * 301})  # kpi_latest.name holds 300
    await publisher.publish(topics.kpi_values, [OutgoingRecord(kpi.encode(), hostile)])
    await produce(publisher, service.settings, series(kpi, [0.15]))

    (letter,) = await consume_matching(service.settings, topics.events_dlq, kpi.encode())
    assert letter.value == hostile
    reason = str(describe(letter)["reason"])
    assert reason.startswith("invalid KPI value: ") and "name" in reason
    await eventually(lambda: kpi_known(sessions, kpi))


async def test_an_owner_nobody_can_reach_is_an_undeliverable_notification(
    service: Harness, publisher: KafkaPublisher
) -> None:
    assert service.settings.alerts.default_email is None
    kpi = unique("unreachable")
    await produce(publisher, service.settings, [kpi_value(kpi, 0.01, owners=[Owner(name="Minh")])])

    async def listed() -> list[dict[str, object]]:
        response = await service.client.get(
            "/v1/notifications", params={"status": "undeliverable", "limit": 1000}, headers=ADMIN
        )
        assert response.status_code == 200, response.text
        return [n for n in response.json() if n["kpi_key"] == kpi]

    (notice,) = await eventually(listed)
    assert notice["target"] == "owner Minh" and notice["channel"] == "none"
    assert notice["attempts"] == 0
    assert "'Minh' has no email, webhook or Slack address" in str(notice["last_error"])
    assert str(notice["subject"]).startswith("[FIRING] KPI " + kpi)
    metrics = (await service.client.get("/metrics")).text
    counted = [
        line
        for line in metrics.splitlines()
        if line.startswith("kpipulse_notifications_undeliverable_total ")
    ]
    assert counted and float(counted[0].split()[1]) >= 1


async def test_a_silence_ending_beyond_what_can_be_stored_is_refused(
    service: Harness, publisher: KafkaPublisher, sessions: async_sessionmaker[AsyncSession]
) -> None:
    kpi = unique("silenced")
    # Leave only once the consumer has joined its group: a member that leaves while the
    # group is still forming stalls the next test's consumer until the group settles.
    await produce(publisher, service.settings, series(kpi, [0.15]))
    await eventually(lambda: kpi_known(sessions, kpi))
    for ends_at in ("9999-12-31T23:59:59-05:00", "9999-12-31T23:59:59Z"):
        body = {"kpi_key": kpi, "ends_at": ends_at, "reason": "for ever"}
        response = await service.client.post("/v1/silences", json=body, headers=ADMIN)
        assert response.status_code == 422, response.text
        assert "ends_at must be at most 366 days from now" in response.text


async def test_owners_stored_before_validation_are_routed_as_unreachable(
    service: Harness,
    publisher: KafkaPublisher,
    smtp: SmtpServer,
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    """A row kept from before owner emails were validated neither mails two addresses
    nor stops the scheduler: its owner is undeliverable, with the reason."""
    kpi = unique("legacy")
    mail = f"{kpi}@example.com"
    breach = kpi_value(kpi, 0.01, owners=[Owner(name="Lan", email=mail)])
    await produce(publisher, service.settings, [breach])
    await smtp.wait_for(mail, 1)
    legacy = [{"name": "Lan", "email": f"{mail}, attacker@evil.example"}]
    async with transaction(sessions) as session:
        await session.execute(
            update(kpi_latest).where(kpi_latest.c.kpi_key == kpi).values(owners=legacy)
        )

    service.clock.advance(service.settings.alerts.repeat_interval_s + 1)
    await service.scheduler.run_once()

    async def listed() -> list[dict[str, object]]:
        response = await service.client.get(
            "/v1/notifications", params={"status": "undeliverable", "limit": 1000}, headers=ADMIN
        )
        return [n for n in response.json() if n["kpi_key"] == kpi]

    (notice,) = await eventually(listed)
    assert notice["kind"] == "repeat" and notice["target"] == "owner Lan"
    assert "refused" in str(notice["last_error"]) and "email" in str(notice["last_error"])
    assert len(smtp.mails_to(mail)) == 1
    assert smtp.mails_to("attacker@evil.example") == []
