"""The real segment-analytics-python client against a real uvicorn server on 127.0.0.1."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from segment.analytics.client import Client
from segment.analytics.request import APIError

from shared.settings import Settings
from tests.integration.ingest.helpers import Keys, basic, consume, unique, value


@pytest.mark.parametrize("use_gzip", [False, True])
async def test_track_identify_page_arrive_in_the_topic(
    server_url: str, keys: Keys, ingest_settings: Settings, use_gzip: bool
) -> None:
    client = Client(write_key=keys.web, host=server_url, sync_mode=True, gzip=use_gzip,
                    max_retries=0)
    user = unique("user")
    stamp = datetime.now(UTC) - timedelta(minutes=3)

    def send() -> list[dict[str, object]]:
        _, track = client.track(user_id=user, event="Trial Started",
                                properties={"plan": "pro", "revenue": 49}, timestamp=stamp)
        _, identify = client.identify(user_id=user, traits={"email": "lan@example.com"})
        _, page = client.page(anonymous_id=f"anon-{user}", name="Pricing",
                              properties={"path": "/pricing"})
        return [track, identify, page]

    track, identify, page = await asyncio.to_thread(send)
    ids = [str(m["messageId"]) for m in (track, identify, page)]
    found = await consume(ingest_settings, ingest_settings.kafka.topics().events, ids)

    tracked = value(found[ids[0]])
    assert tracked["source"] == "web"
    assert tracked["type"] == "trial_started"
    assert tracked["subject_id"] == user
    assert tracked["properties"] == {"plan": "pro", "revenue": 49}
    assert tracked["value"] == 49
    assert tracked["context"]["library"]["name"] == "analytics-python"
    # Clock-skew corrected: about three minutes before the server received it.
    age = datetime.fromisoformat(tracked["received_at"]) - datetime.fromisoformat(
        tracked["occurred_at"]
    )
    assert timedelta(minutes=2, seconds=55) < age < timedelta(minutes=3, seconds=5)

    identified = value(found[ids[1]])
    assert (identified["type"], identified["subject_id"]) == ("identify", user)
    assert identified["properties"] == {"email": "lan@example.com"}

    paged = value(found[ids[2]])
    assert (paged["type"], paged["subject_id"]) == ("page_view", f"anon-{user}")
    assert paged["properties"] == {"path": "/pricing", "name": "Pricing"}


async def test_wrong_source_key_is_refused_to_the_sdk(server_url: str, keys: Keys) -> None:
    client = Client(write_key=keys.crm, host=server_url, sync_mode=True, max_retries=0)
    with pytest.raises(APIError) as info:
        await asyncio.to_thread(client.track, user_id="u", event="Signed Up")
    assert info.value.status == 403


async def test_single_call_routes_and_write_key_in_body(
    client: httpx.AsyncClient, keys: Keys, ingest_settings: Settings
) -> None:
    message_id = unique("seg")
    response = await client.post(
        "/v1/track",
        json={"writeKey": keys.web, "event": "Feature Used", "userId": "u1",
              "messageId": message_id, "timestamp": "2026-03-01T10:00:00Z",
              "sentAt": "2026-03-01T10:00:01Z"},
    )
    assert response.status_code == 200, response.text
    assert response.json()["success"] is True
    found = await consume(ingest_settings, ingest_settings.kafka.topics().events, [message_id])
    assert value(found[message_id])["type"] == "feature_used"

    for kind in ("screen", "group", "alias"):
        ok = await client.post(f"/v1/{kind}", headers=basic(keys.web),
                               json={"userId": "u1", "groupId": "g", "previousId": "p"})
        assert ok.status_code == 200, (kind, ok.text)

    partial = await client.post(
        "/v1/batch", headers=basic(keys.web),
        json={"batch": [{"type": "track", "userId": "u"},
                        {"type": "identify", "userId": "u"}]},
    )
    assert partial.status_code == 200
    assert partial.json()["rejected"][0]["index"] == 0
    assert partial.json()["rejected"][0]["reason"].startswith("event:")

    no_key = await client.post("/v1/identify", json={"userId": "u"})
    assert no_key.status_code == 401
