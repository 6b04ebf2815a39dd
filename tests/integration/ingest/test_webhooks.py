"""Every webhook with a valid, an invalid and a stale signature, and replays."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import time
from datetime import UTC, datetime, timedelta
from urllib.parse import urlencode

import httpx
import orjson
import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from shared.settings import Settings
from tests.integration.ingest.helpers import Secrets, consume, count_key, unique, value

BASE = "http://ingest.test"
STALE = timedelta(minutes=6)


def b64_hmac(secret: bytes, message: bytes) -> str:
    return base64.b64encode(hmac.new(secret, message, hashlib.sha256).digest()).decode()


def hubspot_headers(secret: str, body: bytes, *, age: timedelta = timedelta(0)) -> dict[str, str]:
    ts = str(int((time.time() - age.total_seconds()) * 1000))
    uri = f"{BASE}/v1/webhooks/hubspot"
    signature = b64_hmac(secret.encode(), b"POST" + uri.encode() + body + ts.encode())
    return {"X-HubSpot-Signature-v3": signature, "X-HubSpot-Request-Timestamp": ts,
            "Content-Type": "application/json"}


def sendgrid_headers(
    key: ec.EllipticCurvePrivateKey, body: bytes, *, age: timedelta = timedelta(0)
) -> dict[str, str]:
    ts = str(int(time.time() - age.total_seconds()))
    signature = key.sign(ts.encode() + body, ec.ECDSA(hashes.SHA256()))
    return {"X-Twilio-Email-Event-Webhook-Signature": base64.b64encode(signature).decode(),
            "X-Twilio-Email-Event-Webhook-Timestamp": ts}


def zendesk_headers(secret: str, body: bytes, *, age: timedelta = timedelta(0)) -> dict[str, str]:
    ts = (datetime.now(UTC) - age).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {"X-Zendesk-Webhook-Signature": b64_hmac(secret.encode(), ts.encode() + body),
            "X-Zendesk-Webhook-Signature-Timestamp": ts}


def standard_headers(
    secret: str, body: bytes, msg_id: str, *, age: timedelta = timedelta(0)
) -> dict[str, str]:
    ts = str(int(time.time() - age.total_seconds()))
    key = base64.b64decode(secret.removeprefix("whsec_"))
    signature = b64_hmac(key, f"{msg_id}.{ts}.".encode() + body)
    return {"webhook-id": msg_id, "webhook-timestamp": ts, "webhook-signature": f"v1,{signature}"}


async def test_hubspot(
    client: httpx.AsyncClient, secrets: Secrets, ingest_settings: Settings
) -> None:
    event_id = unique("hs")
    body = orjson.dumps([{"eventId": event_id, "subscriptionType": "deal.propertyChange",
                          "objectId": 42, "propertyName": "dealstage",
                          "propertyValue": "closedwon", "occurredAt": 1772323200000}])
    url = "/v1/webhooks/hubspot"
    headers = hubspot_headers(secrets.hubspot[1], body)
    ok = await client.post(url, content=body, headers=headers)
    assert ok.status_code == 200, ok.text
    assert ok.json() == {"replayed": False, "accepted": [f"hubspot:{event_id}"], "rejected": []}
    replay = await client.post(url, content=body, headers=headers)
    assert replay.status_code == 200
    assert replay.json()["replayed"] is True
    assert replay.json()["detail"] == "delivery already received; not republished"
    await asyncio.sleep(0.002)  # a fresh timestamp: a new delivery, signed with the older secret
    rotated = await client.post(
        url, content=body, headers=hubspot_headers(secrets.hubspot[0], body)
    )
    assert rotated.status_code == 200
    assert rotated.json()["replayed"] is False

    invalid = await client.post(url, content=body, headers=hubspot_headers("wrong", body))
    assert invalid.status_code == 401
    assert "does not match" in invalid.json()["detail"]
    stale = await client.post(
        url, content=body, headers=hubspot_headers(secrets.hubspot[0], body, age=STALE)
    )
    assert stale.status_code == 401
    assert "window" in stale.json()["detail"]

    found = await consume(
        ingest_settings, ingest_settings.kafka.topics().events, [f"hubspot:{event_id}"]
    )
    event = value(found[f"hubspot:{event_id}"])
    assert (event["source"], event["type"], event["subject_id"]) == ("crm", "deal_won", "42")


async def test_sendgrid(
    client: httpx.AsyncClient, secrets: Secrets, ingest_settings: Settings
) -> None:
    sg_id = unique("sg")
    body = orjson.dumps([{"email": "lan@example.com", "timestamp": int(time.time()),
                          "event": "click", "sg_event_id": sg_id, "url": "https://x"}])
    url = "/v1/webhooks/sendgrid"
    ok = await client.post(url, content=body, headers=sendgrid_headers(secrets.sendgrid[1], body))
    assert ok.status_code == 200, ok.text
    assert ok.json()["accepted"] == [f"sendgrid:{sg_id}"]
    stranger = ec.generate_private_key(ec.SECP256R1())
    invalid = await client.post(url, content=body, headers=sendgrid_headers(stranger, body))
    assert invalid.status_code == 401
    stale = await client.post(
        url, content=body, headers=sendgrid_headers(secrets.sendgrid[0], body, age=STALE)
    )
    assert stale.status_code == 401
    missing = await client.post(url, content=body)
    assert missing.status_code == 401

    found = await consume(
        ingest_settings, ingest_settings.kafka.topics().events, [f"sendgrid:{sg_id}"]
    )
    event = value(found[f"sendgrid:{sg_id}"])
    assert (event["source"], event["type"]) == ("email", "email_clicked")
    assert event["context"]["url"] == "https://x"


async def test_mailchimp(
    client: httpx.AsyncClient, secrets: Secrets, ingest_settings: Settings
) -> None:
    good_url = f"/v1/webhooks/mailchimp/{secrets.mailchimp[1]}"
    assert (await client.get(good_url)).status_code == 200  # Mailchimp's validation GET
    assert (await client.get("/v1/webhooks/mailchimp/guess")).status_code == 401
    email = f"{unique('mc')}@example.com"
    form = urlencode({"type": "unsubscribe", "fired_at": "2026-03-01 10:00:00",
                      "data[email]": email, "data[list_id]": "L1"}).encode()
    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    ok = await client.post(good_url, content=form, headers=headers)
    assert ok.status_code == 200, ok.text
    (event_id,) = ok.json()["accepted"]
    replay = await client.post(good_url, content=form, headers=headers)
    assert replay.json()["replayed"] is True
    invalid = await client.post("/v1/webhooks/mailchimp/guess", content=form, headers=headers)
    assert invalid.status_code == 401

    found = await consume(ingest_settings, ingest_settings.kafka.topics().events, [event_id])
    event = value(found[event_id])
    assert (event["source"], event["type"], event["subject_id"]) == (
        "email", "list_unsubscribed", email
    )


async def test_zendesk(
    client: httpx.AsyncClient, secrets: Secrets, ingest_settings: Settings
) -> None:
    zid = unique("zd")
    body = orjson.dumps({"type": "zen:event-type:ticket.created", "id": zid,
                         "time": "2026-03-01T09:00:00Z", "detail": {"requester_id": "r-9"}})
    url = "/v1/webhooks/zendesk"
    ok = await client.post(url, content=body, headers=zendesk_headers(secrets.zendesk[0], body))
    assert ok.status_code == 200, ok.text
    assert ok.json() == {"replayed": False, "accepted": [f"zendesk:{zid}"], "rejected": []}
    invalid = await client.post(url, content=body, headers=zendesk_headers("nope", body))
    assert invalid.status_code == 401
    stale = await client.post(
        url, content=body, headers=zendesk_headers(secrets.zendesk[1], body, age=STALE)
    )
    assert stale.status_code == 401

    topic = ingest_settings.kafka.topics().events
    found = await consume(ingest_settings, topic, [f"zendesk:{zid}"])
    event = value(found[f"zendesk:{zid}"])
    assert (event["source"], event["type"], event["subject_id"]) == (
        "support", "ticket_opened", "r-9"
    )


@pytest.mark.parametrize("source", ["crm", "support"])
async def test_standard_webhooks_and_replay(
    client: httpx.AsyncClient, secrets: Secrets, ingest_settings: Settings, source: str
) -> None:
    msg_id = unique("msg")
    body = orjson.dumps({"type": "invoice.paid", "timestamp": "2026-03-01T08:00:00Z",
                         "data": {"subject_id": "cust-1", "value": 99}})
    url = f"/v1/webhooks/standard/{source}"
    headers = standard_headers(secrets.standard[source][1], body, msg_id)
    ok = await client.post(url, content=body, headers=headers)
    assert ok.status_code == 200, ok.text
    assert ok.json()["accepted"] == [msg_id]
    replay = await client.post(url, content=body, headers=headers)
    assert replay.status_code == 200
    assert replay.json()["replayed"] is True
    assert replay.json()["accepted"] == []

    invalid = await client.post(
        url,
        content=body,
        headers=standard_headers(secrets.standard[source][0], body + b" ", msg_id),
    )
    assert invalid.status_code == 401
    stale = await client.post(
        url, content=body,
        headers=standard_headers(secrets.standard[source][0], body, unique("msg"), age=STALE),
    )
    assert stale.status_code == 401
    unknown = await client.post("/v1/webhooks/standard/sales", content=body, headers=headers)
    assert unknown.status_code == 404

    found = await consume(ingest_settings, ingest_settings.kafka.topics().events, [msg_id])
    event = value(found[msg_id])
    assert (event["source"], event["type"], event["value"]) == (source, "invoice_paid", 99)
    # Published once although delivered twice.
    assert await count_key(ingest_settings, ingest_settings.kafka.topics().events, msg_id) == 1


async def test_unconfigured_webhook_is_404(
    client: httpx.AsyncClient, topics_ready: Settings, sessions: object
) -> None:
    from tests.integration.ingest.conftest import build_app

    bare = build_app(topics_ready, sessions)  # type: ignore[arg-type]
    transport = httpx.ASGITransport(app=bare)
    async with httpx.AsyncClient(transport=transport, base_url=BASE) as c:
        response = await c.post("/v1/webhooks/zendesk", content=b"{}")
    assert response.status_code == 404
    assert "not configured" in response.json()["detail"]
