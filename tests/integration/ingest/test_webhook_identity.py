"""What identifies a webhook delivery: what its signature covers, per source, never cut."""

from __future__ import annotations

import httpx
import orjson

from shared.settings import Settings
from tests.integration.ingest.helpers import Secrets, count_key, unique
from tests.integration.ingest.test_webhooks import (
    hubspot_headers,
    standard_headers,
    zendesk_headers,
)


async def test_a_standard_webhook_secret_serves_its_own_source_only(
    client: httpx.AsyncClient, secrets: Secrets
) -> None:
    body = orjson.dumps({"type": "complaint.received", "data": {}})
    msg_id = unique("msg")
    headers = standard_headers(secrets.standard["support"][0], body, msg_id)
    assert (await client.post("/v1/webhooks/standard/support", content=body,
                              headers=headers)).status_code == 200
    for other in ("crm", "web", "email"):
        moved = await client.post(f"/v1/webhooks/standard/{other}", content=body,
                                  headers=headers)
        assert moved.status_code == 401, (other, moved.text)
        assert "signature does not match" in moved.json()["detail"]


async def test_a_zendesk_replay_under_a_new_invocation_id_is_published_once(
    client: httpx.AsyncClient, secrets: Secrets, ingest_settings: Settings
) -> None:
    # No event id of its own: the event id derives from the delivery.
    marker = unique("zd-replay")
    body = orjson.dumps({"type": "zen:event-type:ticket.created",
                         "time": "2026-03-01T09:00:00Z", "detail": {"requester_id": marker}})
    headers = zendesk_headers(secrets.zendesk[0], body)
    first = await client.post("/v1/webhooks/zendesk", content=body,
                              headers={**headers, "X-Zendesk-Webhook-Invocation-Id": "inv-1"})
    assert first.status_code == 200, first.text
    assert first.json()["replayed"] is False
    (event_id,) = first.json()["accepted"]
    for invocation in ({"X-Zendesk-Webhook-Invocation-Id": "inv-2"}, {}):
        again = await client.post("/v1/webhooks/zendesk", content=body,
                                  headers={**headers, **invocation})
        assert again.status_code == 200
        assert again.json()["replayed"] is True
    topic = ingest_settings.kafka.topics().events
    assert await count_key(ingest_settings, topic, event_id) == 1


async def test_over_long_webhook_event_ids_are_refused_not_cut(
    client: httpx.AsyncClient, secrets: Secrets
) -> None:
    prefix = unique("long") + "x" * 150
    answers = []
    for suffix in ("a", "b"):
        body = orjson.dumps([{"eventId": prefix + suffix, "subscriptionType": "deal.creation",
                              "objectId": 1, "occurredAt": 1_700_000_000_000}])
        response = await client.post("/v1/webhooks/hubspot", content=body,
                                     headers=hubspot_headers(secrets.hubspot[0], body))
        answers.append(response)
    for response in answers:  # the second is not mistaken for a replay of the first
        assert response.status_code == 422, response.text
        assert "event_id: String should have at most 128 characters" in response.text


async def test_long_standard_webhook_ids_are_told_apart(
    client: httpx.AsyncClient, secrets: Secrets
) -> None:
    prefix = unique("msg") + "y" * 250
    secret = secrets.standard["web"][0]
    for suffix in ("1", "2"):
        body = orjson.dumps({"type": "page.viewed", "data": {}})
        msg_id = prefix + suffix
        response = await client.post("/v1/webhooks/standard/web", content=body,
                                     headers=standard_headers(secret, body, msg_id))
        assert response.status_code == 422, response.text  # its event id is too long
        assert response.json().get("replayed") is None
