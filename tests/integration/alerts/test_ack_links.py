"""The acknowledgement link in an alert email: signed, expiring, single-use, attributed."""

from __future__ import annotations

import re
from datetime import timedelta
from urllib.parse import urlsplit

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.alerts.app import ack_link_key
from services.alerts.domain.acklinks import sign
from shared.bus.kafka import KafkaPublisher
from shared.contracts.kpi_values import Owner
from tests.integration.alerts.conftest import ADMIN, Harness, produce
from tests.integration.alerts.factories import kpi_value, unique
from tests.integration.alerts.receivers import SmtpServer

_LINK = re.compile(r"Acknowledge \(stops repeats\): (\S+)")


async def test_the_email_link_acknowledges_once_as_its_recipient(
    service: Harness,
    publisher: KafkaPublisher,
    smtp: SmtpServer,
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    kpi = unique("acklink")
    mail = f"{kpi}@example.com"
    await produce(publisher, service.settings, [kpi_value(kpi, 0.0, owners=[Owner(
        name="Owner", email=mail)])])
    (firing,) = await smtp.wait_for(mail, 1)
    match = _LINK.search(firing.part("text/plain"))
    assert match is not None, firing.part("text/plain")
    assert match.group(1) in firing.part("text/html")
    path = urlsplit(match.group(1)).path

    # Fetching the link (as a mail scanner would) changes nothing.
    shown = await service.client.get(path)
    assert shown.status_code == 200 and mail in shown.text and "<form" in shown.text
    alerts = (await service.client.get("/v1/alerts", params={"kpi_key": kpi},
                                       headers=ADMIN)).json()
    assert alerts[0]["acked_at"] is None

    done = await service.client.post(path, content=b"note=on+it",
                                     headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert done.status_code == 200, done.text
    alerts = (await service.client.get("/v1/alerts", params={"kpi_key": kpi},
                                       headers=ADMIN)).json()
    assert (alerts[0]["acked_by"], alerts[0]["ack_note"]) == (mail, "on it")
    again = await service.client.post(path)
    assert again.status_code == 409 and f"acknowledged by {mail}" in again.text

    # Altered or expired links are refused.
    forged = path[:-3] + ("AAA" if not path.endswith("AAA") else "BBB")
    assert (await service.client.post(forged)).status_code == 403
    key = ack_link_key(service.settings)
    assert key is not None
    expired = sign(int(alerts[0]["id"]), mail, service.clock() - timedelta(seconds=1), key)
    refused = await service.client.get(f"/v1/ack/{expired}")
    assert refused.status_code == 403 and "expired" in refused.text
