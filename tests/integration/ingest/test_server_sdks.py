"""The other vendors' real server SDKs against ingest on 127.0.0.1, only their host changed.

rudder-sdk-python (PyPI, imported as ``rudderstack.analytics``), ``@segment/analytics-node``
and ``@rudderstack/rudder-sdk-node`` (npm, pinned in node_sdks/package-lock.json and installed
by deploy/local/node-sdks.sh, which make test runs) each send a track, an identify and a page
with their own defaults (batching and retries; RudderStack's gzip). Each call must be in the
events topic exactly once — no event of the run is missing, doubled or extra — with the right type,
subject, properties (RudderStack's identify traits come in ``context.traits``) and
timestamps (a track stamped three minutes ago keeps that age after clock-skew correction).
The Node SDKs run as a child process (tests/integration/ingest/node_sdks/send.js).
"""

from __future__ import annotations

import asyncio
import shutil
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from rudderstack.analytics.client import Client as RudderClient

from shared.settings import Settings
from tests.integration.ingest.helpers import Keys, consume, values_containing
from tests.support.processes import REPO

NODE_SDKS = REPO / ".cache" / "node-sdks"
SEND_JS = REPO / "tests" / "integration" / "ingest" / "node_sdks" / "send.js"
# The library each SDK names itself as in context.library (RudderStack's SDKs use Segment's).
LIBRARIES = {
    "rudder-sdk-python": "analytics-python",
    "segment": "@segment/analytics-node",
    "rudderstack": "analytics-node",
}
TRACK_AGE = timedelta(minutes=3)
# How long after its timestamp an SDK may send a call (it batches); bounds the checks of
# occurred_at, not how long anything here takes.
SEND_DELAY = timedelta(seconds=60)


async def arrived(settings: Settings, run: str, ids: list[str]) -> dict[str, dict[str, Any]]:
    """The events of ``run`` by type, once every one of ``ids`` is in the events topic;
    each call of the run must be there exactly once, and nothing else of the run."""
    topic = settings.kafka.topics().events
    await consume(settings, topic, ids)
    # The SDK has finished sending: whatever it sent is now in the topic.
    events = await values_containing(settings, topic, run)
    assert sorted(event["event_id"] for event in events) == sorted(ids), events
    by_type = {event["type"]: event for event in events}
    assert set(by_type) == {"order_completed", "identify", "page_view"}, events
    return by_type


def age(event: dict[str, Any]) -> timedelta:
    received = datetime.fromisoformat(event["received_at"])
    return received - datetime.fromisoformat(event["occurred_at"])


def check(events: dict[str, dict[str, Any]], run: str, user: str, library: str) -> None:
    for event in events.values():
        assert event["source"] == "web", event
        assert event["context"]["library"]["name"] == library, event

    track = events["order_completed"]
    assert track["subject_id"] == user
    assert track["properties"] == {"run": run, "plan": "pro", "revenue": 42}
    assert track["value"] == 42
    # Skew corrected from the SDK's own sentAt: the age it was given, plus its batching.
    assert TRACK_AGE - timedelta(seconds=1) <= age(track) <= TRACK_AGE + SEND_DELAY, track

    identify = events["identify"]
    assert identify["subject_id"] == user
    assert identify["properties"] == {"run": run, "email": "lan@example.com"}
    assert timedelta(seconds=-1) <= age(identify) <= SEND_DELAY, identify

    page = events["page_view"]
    assert page["subject_id"] == f"anon-{user}"
    assert page["properties"] == {
        "run": run, "path": "/pricing", "name": "Pricing", "category": "Docs"
    }
    assert timedelta(seconds=-1) <= age(page) <= SEND_DELAY, page


async def test_rudder_sdk_python_delivers_exactly_once(
    server_url: str, keys: Keys, ingest_settings: Settings
) -> None:
    run = uuid.uuid4().hex
    user = f"rudder-python-{run}"
    errors: list[str] = []
    # Its defaults: a background thread sends gzipped batches, with retries.
    client = RudderClient(write_key=keys.web, host=server_url,
                          on_error=lambda error, batch: errors.append(str(error)))

    def send() -> list[dict[str, Any]]:
        sent = [
            client.track(user_id=user, event="Order Completed",
                         properties={"run": run, "plan": "pro", "revenue": 42},
                         timestamp=datetime.now(UTC) - TRACK_AGE),
            client.identify(user_id=user, traits={"run": run, "email": "lan@example.com"}),
            client.page(anonymous_id=f"anon-{user}", category="Docs", name="Pricing",
                        properties={"run": run, "path": "/pricing"}),
        ]
        client.flush()  # until its queue is sent
        client.join()
        assert all(queued for queued, _ in sent), sent
        return [message for _, message in sent]

    messages = await asyncio.to_thread(send)
    assert not errors, errors
    events = await arrived(ingest_settings, run, [str(m["messageId"]) for m in messages])
    check(events, run, user, LIBRARIES["rudder-sdk-python"])


@pytest.mark.parametrize("sdk", ["segment", "rudderstack"])
async def test_node_sdk_delivers_exactly_once(
    server_url: str, keys: Keys, ingest_settings: Settings, sdk: str
) -> None:
    node = shutil.which("node")
    package = {"segment": "@segment/analytics-node",
               "rudderstack": "@rudderstack/rudder-sdk-node"}[sdk]
    if node is None or not (NODE_SDKS / "node_modules" / package / "package.json").is_file():
        pytest.fail(f"needs node and {package}: run deploy/local/node-sdks.sh")
    run = uuid.uuid4().hex
    process = await asyncio.create_subprocess_exec(
        node, str(SEND_JS), sdk, str(NODE_SDKS), keys.web, server_url, run,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )
    try:
        async with asyncio.timeout(120):
            output, _ = await process.communicate()
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    text = output.decode(errors="replace")[-4000:]
    assert process.returncode == 0, text
    sent = {
        kind: message_id
        for _, message_id, kind in (line.split()[:3] for line in text.splitlines()
                                    if line.startswith("ok "))
    }
    assert set(sent) == {"track", "identify", "page"} and "failed" not in text, text

    events = await arrived(ingest_settings, run, list(sent.values()))
    check(events, run, f"node-{sdk}-{run}", LIBRARIES[sdk])
