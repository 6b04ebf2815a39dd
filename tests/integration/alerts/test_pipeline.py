"""End to end through real Kafka and Postgres: values in, emails and webhooks out."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import orjson
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.alerts.domain.payloads import SIGNATURE_HEADER, verify
from services.alerts.repository import AlertRepository
from services.alerts.tables import outbox
from shared.bus.dlq import describe
from shared.bus.kafka import KafkaPublisher
from shared.bus.ports import OutgoingRecord
from shared.contracts.kpi_values import Owner
from shared.i18n import translator
from tests.integration.alerts.conftest import (
    ADMIN,
    WEBHOOK_SECRET,
    Harness,
    kpi_known,
    produce,
)
from tests.integration.alerts.factories import kpi_value, series, unique
from tests.integration.alerts.receivers import HttpReceiver, SmtpServer, eventually
from tests.support.kafka import consume_matching


async def _alerts(harness: Harness, kpi: str) -> list[dict[str, object]]:
    response = await harness.client.get("/v1/alerts", params={"kpi_key": kpi}, headers=ADMIN)
    assert response.status_code == 200
    rows: list[dict[str, object]] = response.json()
    return rows


async def test_breach_notifies_once_and_recovery_sends_a_resolve(
    service: Harness,
    publisher: KafkaPublisher,
    smtp: SmtpServer,
    receiver: HttpReceiver,
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    kpi = unique("conversion")
    mail = f"{kpi}@example.com"
    hook = f"{receiver.url}/{kpi}"
    owner = Owner(name="Lan", email=mail, webhook_url=hook)
    # Healthy, then a breach that hovers just around the minimum (0.10, margin 2 %).
    values = [0.12, 0.083, 0.09, 0.1005, 0.0995, 0.101]
    await produce(publisher, service.settings, series(kpi, values, owners=[owner]))

    (firing,) = await smtp.wait_for(mail, 1)
    assert firing.subject == f"[FIRING] KPI {kpi} is worse than its minimum"
    text = firing.part("text/plain")
    for fact in ("0.083", "0.1 (higher is better)", "0.18", "Lan", "http://scorecard.test/"):
        assert fact in text, fact
    assert "0.12 → 0.083" in text  # the recent trend
    assert "http://scorecard.test/" in firing.part("text/html")

    (request,) = await receiver.wait_for(f"/{kpi}", 1)
    assert verify(request.body, WEBHOOK_SECRET, request.headers[SIGNATURE_HEADER.lower()])
    body = orjson.loads(request.body)
    assert body["version"] == "4" and body["status"] == "firing"
    assert body["alerts"][0]["labels"]["kpi"] == kpi

    # Hovering does not flap: still exactly one notice per channel, alert still firing.
    await asyncio.sleep(1.0)
    assert len(smtp.mails_to(mail)) == 1
    assert len(receiver.on_path(f"/{kpi}")) == 1
    (alert,) = await _alerts(service, kpi)
    assert alert["state"] == "firing"

    await produce(publisher, service.settings, [kpi_value(kpi, 0.13, owners=[owner])])
    mails = await smtp.wait_for(mail, 2)
    assert mails[1].subject.startswith("[RESOLVED]")
    requests = await receiver.wait_for(f"/{kpi}", 2)
    assert orjson.loads(requests[1].body)["status"] == "resolved"

    (alert,) = await _alerts(service, kpi)
    assert alert["state"] == "resolved"
    async with sessions() as session:
        steps = await AlertRepository().transitions(session, int(str(alert["id"])))
    assert [(s.from_state, s.to_state) for s in steps] == [
        (None, "pending"),
        ("pending", "firing"),
        ("firing", "resolved"),
    ]
    assert steps[1].value == 0.083 and steps[2].value == 0.13
    history = await service.client.get(
        "/v1/notifications", params={"alert_id": int(str(alert["id"]))}, headers=ADMIN
    )
    assert sorted((n["channel"], n["kind"], n["status"]) for n in history.json()) == [
        ("email", "firing", "sent"),
        ("email", "resolved", "sent"),
        ("webhook", "firing", "sent"),
        ("webhook", "resolved", "sent"),
    ]
    metrics = (await service.client.get("/metrics")).text
    assert 'kpipulse_notifications_sent_total{channel="email"}' in metrics
    assert "kpipulse_notification_delivery_seconds_bucket" in metrics


async def test_ack_stops_repeats_and_the_resolve_is_still_sent(
    service: Harness, publisher: KafkaPublisher, smtp: SmtpServer
) -> None:
    kpi = unique("churn")
    mail = f"{kpi}@example.com"
    owner = Owner(name="Minh", email=mail)
    # Lower is better: 6 % churn against a 5 % limit is a breach.
    breach = kpi_value(
        kpi, 0.06, owners=[owner], minimum=0.05, target=0.03, direction="lower_is_better"
    )
    await produce(publisher, service.settings, [breach])
    await smtp.wait_for(mail, 1)

    interval = service.settings.alerts.repeat_interval_s
    service.clock.advance(interval + 1)
    await service.scheduler.run_once()
    mails = await smtp.wait_for(mail, 2)
    assert mails[1].subject.startswith("[STILL FIRING]")

    (alert,) = await _alerts(service, kpi)
    ack_path = f"/v1/alerts/{alert['id']}/ack"
    assert (await service.client.post(ack_path, json={"note": "x"})).status_code == 401
    wrong = {"Authorization": "Bearer wrong"}
    assert (await service.client.post(ack_path, json={}, headers=wrong)).status_code == 401
    acked = await service.client.post(ack_path, json={"note": "on it"}, headers=ADMIN)
    assert acked.status_code == 200, acked.text
    assert acked.json()["ack_note"] == "on it"

    service.clock.advance(interval + 1)
    await service.scheduler.run_once()
    await asyncio.sleep(0.5)
    assert len(smtp.mails_to(mail)) == 2  # no repeat after the ack

    recovered = kpi_value(
        kpi, 0.03, owners=[owner], minimum=0.05, target=0.03, direction="lower_is_better"
    )
    await produce(publisher, service.settings, [recovered])
    mails = await smtp.wait_for(mail, 3)
    assert mails[2].subject.startswith("[RESOLVED]")
    missing = await service.client.post("/v1/alerts/999999999/ack", json={}, headers=ADMIN)
    assert missing.status_code == 404 and "999999999" in missing.json()["detail"]
    done = await service.client.post(ack_path, json={}, headers=ADMIN)
    assert done.status_code == 409


async def test_a_silence_suppresses_and_records_the_notice(
    service: Harness,
    publisher: KafkaPublisher,
    smtp: SmtpServer,
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    kpi = unique("leads")
    mail = f"{kpi}@example.com"
    body = {"kpi_key": kpi, "duration_s": 3600, "reason": "campaign paused"}
    assert (await service.client.post("/v1/silences", json=body)).status_code == 401
    bad = await service.client.post(
        "/v1/silences", json={"kpi_key": kpi, "reason": "r"}, headers=ADMIN
    )
    assert bad.status_code == 422 and "ends_at" in bad.text
    created = await service.client.post("/v1/silences", json=body, headers=ADMIN)
    assert created.status_code == 201, created.text
    silence = created.json()
    listed = (await service.client.get("/v1/silences", headers=ADMIN)).json()
    assert silence["id"] in [s["id"] for s in listed]

    owner = Owner(name="Hoa", email=mail)
    await produce(publisher, service.settings, [kpi_value(kpi, 0.01, owners=[owner])])

    async def suppressed() -> list[str]:
        async with sessions() as session:
            rows = await session.execute(select(outbox.c.status).where(outbox.c.target == mail))
            return list(rows.scalars())

    assert await eventually(suppressed) == ["suppressed"]
    await asyncio.sleep(0.5)
    assert smtp.mails_to(mail) == []
    history = await service.client.get(
        "/v1/notifications", params={"status": "suppressed"}, headers=ADMIN
    )
    assert mail in [n["target"] for n in history.json()]

    ended = await service.client.delete(f"/v1/silences/{silence['id']}", headers=ADMIN)
    assert ended.status_code == 204
    remaining = (await service.client.get("/v1/silences", headers=ADMIN)).json()
    assert silence["id"] not in [s["id"] for s in remaining]
    assert (await service.client.delete("/v1/silences/999999999", headers=ADMIN)).status_code == 404


async def test_an_expired_kpi_alerts_its_owner_once(
    service: Harness,
    publisher: KafkaPublisher,
    smtp: SmtpServer,
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    kpi = unique("expired")
    mail = f"{kpi}@example.com"
    yesterday = (datetime.now(UTC) - timedelta(days=1)).date()
    message = kpi_value(kpi, 0.15, owners=[Owner(name="An", email=mail)], expires_on=yesterday)
    await produce(publisher, service.settings, [message])

    await eventually(lambda: kpi_known(sessions, kpi))
    for _ in range(3):
        await service.scheduler.run_once()
    (mail_received,) = await smtp.wait_for(mail, 1)
    assert "has expired" in mail_received.subject
    # Dates in the company's locale (English by default): "Dec 7, 2026".
    assert translator("en").date(yesterday) in mail_received.part("text/plain")
    # More rounds (and the value arriving again) never alert twice for this expiry date.
    await produce(publisher, service.settings, [message])
    for _ in range(3):
        service.clock.advance(service.settings.alerts.repeat_interval_s + 1)
        await service.scheduler.run_once()
    await asyncio.sleep(1.0)
    assert len(smtp.mails_to(mail)) == 1
    (alert,) = await _alerts(service, kpi)
    assert alert["condition"] == "expired" and alert["state"] == "firing"


async def test_an_invalid_kpi_value_is_dead_lettered_and_the_next_applied(
    service: Harness, publisher: KafkaPublisher, sessions: async_sessionmaker[AsyncSession]
) -> None:
    kpi = unique("garbled")
    topics = service.settings.kafka.topics()
    invalid = orjson.dumps({"kpi_key": kpi, "value": "not a number"})
    await publisher.publish(topics.kpi_values, [OutgoingRecord(kpi.encode(), invalid)])
    await produce(publisher, service.settings, series(kpi, [0.12]))

    (letter,) = await consume_matching(service.settings, topics.events_dlq, kpi.encode())
    assert letter.value == invalid  # kept as it came, for whoever repairs it
    where = describe(letter)
    assert where["stage"] == "alerts"
    assert where["source_topic"] == topics.kpi_values
    assert str(where["reason"]).startswith("invalid KPI value: ")
    # The valid value behind it was applied: the invalid one blocked nothing.
    await eventually(lambda: kpi_known(sessions, kpi))


async def test_a_retired_kpi_is_forgotten_without_notices(
    service: Harness,
    publisher: KafkaPublisher,
    smtp: SmtpServer,
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    kpi = unique("retired")
    mail = f"{kpi}@example.com"
    owner = Owner(name="A", email=mail)
    await produce(
        publisher, service.settings, [kpi_value(kpi, 0.05, owners=[owner], update_every_s=60)]
    )
    (firing,) = await smtp.wait_for(mail, 1)
    assert firing.subject.startswith("[FIRING]")
    farewell = kpi_value(kpi, None, owners=[owner], update_every_s=60)
    await produce(publisher, service.settings, [farewell.model_copy(update={"retired": True})])

    async def forgotten() -> bool:
        return not await kpi_known(sessions, kpi)

    await eventually(forgotten)
    assert [alert["state"] for alert in await _alerts(service, kpi)] == ["resolved"]
    # Long past two update periods: a watched KPI would now be reported stale.
    service.clock.advance(600)
    await service.scheduler.run_once()
    await asyncio.sleep(0.5)
    assert len(smtp.mails_to(mail)) == 1  # neither a resolve notice nor a stale one
