"""The real browser SDKs from npm, in headless Chromium, deliver to ingest and on to Kafka.

A page served from another origin on 127.0.0.1 loads the published bundles of
``@segment/analytics-next`` and ``@rudderstack/analytics-js`` (pinned in
tests/e2e/sdks/package-lock.json, installed by deploy/local/browser-sdks.sh) with only
their host settings pointed at the stack's ingest, identifies, tracks and pages; the
events must then be in the events topic. Every request the pages make must go to
127.0.0.1: an SDK reaching for its vendor's CDN would fail here. A key limited to
another site's origin is refused, and the SDK can read why.
"""

from __future__ import annotations

import asyncio
import threading
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import orjson
import pytest
from playwright.async_api import Browser, ConsoleMessage, Page, Request, async_playwright

from tests.e2e.browser import CHROMIUM_ARGS, REPO, chromium_path
from tests.e2e.conftest import Stack
from tests.support.kafka import consume_matching
from tests.support.processes import free_port

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(120)]

SDKS = REPO / ".cache" / "browser-sdks" / "node_modules"
BUNDLES = {
    "/segment.js": SDKS / "@segment/analytics-next/dist/umd/index.js",
    # The "bundled" build carries its plugins (event delivery among them) instead of
    # fetching them from RudderStack's CDN.
    "/rudder.js": SDKS / "@rudderstack/analytics-js/dist/npm/modern/bundled/umd/index.js",
}
READY_TIMEOUT_S = 30

SEGMENT_PAGE = """<!doctype html><meta charset="utf-8"><script src="/segment.js"></script>
<script>
window.run = async (writeKey, ingest, run, batching) => {
  // The host setting: settings and events both come from ingest.
  const options = batching
    ? { integrations: { 'Segment.io': {
        deliveryStrategy: { strategy: 'batching', config: { size: 3, timeout: 100 } } } } }
    : {};
  const [analytics] = await AnalyticsNext.AnalyticsBrowser.load(
    { writeKey, cdnURL: ingest }, options);
  const done = await Promise.all([
    analytics.identify('user-' + run, { email: 'lan@example.com', run }),
    analytics.track('Trial Started', { plan: 'pro', run }),
    analytics.page('Docs', 'Pricing', { run }),
  ]);
  return done.map((ctx) => ctx.event.messageId);
};
window.refused = async (writeKey, ingest) => {
  try {
    await AnalyticsNext.AnalyticsBrowser.load({ writeKey, cdnURL: ingest });
    return 'loaded';
  } catch (error) {
    return String(error.message);
  }
};
</script>"""

RUDDER_PAGE = """<!doctype html><meta charset="utf-8"><script src="/rudder.js"></script>
<script>
window.run = (writeKey, ingest, run, useBeacon) => new Promise((resolve) => {
  const rudder = new rudderanalytics.RudderAnalytics();
  // The host settings: the data plane and the configuration both at ingest.
  rudder.load(writeKey, ingest, {
    configUrl: ingest, logLevel: 'ERROR', useBeacon,
    beaconQueueOptions: { maxItems: 3, flushQueueInterval: 100 },
  });
  rudder.ready(() => {
    rudder.identify('user-' + run, { email: 'lan@example.com', run });
    rudder.track('Trial Started', { plan: 'pro', run });
    rudder.page('Docs', 'Pricing', { run });
    resolve(true);
  });
});
</script>"""

PAGES = {"/segment.html": SEGMENT_PAGE, "/rudder.html": RUDDER_PAGE}


@contextmanager
def page_server() -> Iterator[str]:
    """The pages and the bundles, from an origin of their own on 127.0.0.1."""
    missing = [str(path) for path in BUNDLES.values() if not path.is_file()]
    if missing:
        pytest.fail(f"browser SDKs not installed ({missing}): run deploy/local/browser-sdks.sh")
    files = {path: (bundle.read_bytes(), "text/javascript") for path, bundle in BUNDLES.items()}
    files.update({path: (html.encode(), "text/html") for path, html in PAGES.items()})

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body, content_type = files.get(self.path, (b"not found", "text/plain"))
            self.send_response(200 if self.path in files else 404)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass  # quiet: failures show in the test's own report

    server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
    thread = threading.Thread(target=server.serve_forever, name="sdk-pages", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@dataclass
class Seen:
    """What a page did: every request URL, failed requests, console errors."""

    urls: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def attach(self, page: Page) -> None:
        page.on("request", lambda request: self.urls.append(request.url))
        page.on("requestfailed", self._failed)
        page.on("console", self._console)
        page.on("pageerror", lambda exc: self.errors.append(str(exc)))

    def _failed(self, request: Request) -> None:
        self.failed.append(f"{request.method} {request.url}: {request.failure}")

    def _console(self, message: ConsoleMessage) -> None:
        if message.type == "error":
            self.errors.append(message.text)

    def report(self) -> str:
        return f"requests: {self.urls}\nfailed: {self.failed}\nconsole errors: {self.errors}"

    def only_local(self) -> None:
        elsewhere = [url for url in self.urls if not url.startswith("http://127.0.0.1:")]
        assert not elsewhere, f"the SDK reached beyond 127.0.0.1: {elsewhere}\n{self.report()}"


@pytest.fixture(scope="module")
def pages() -> Iterator[str]:
    with page_server() as url:
        yield url


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    executable = chromium_path()
    if executable is None:
        pytest.fail("Chromium is missing: apt-get install -y chromium")
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(
            executable_path=executable, args=list(CHROMIUM_ARGS), headless=True
        )
        yield launched
        await launched.close()


def web_key(stack: Stack, name: str, origins: list[str]) -> str:
    """A web write key of the stack's ingest limited to ``origins``."""
    created = httpx.post(
        f"{stack.ingest}/v1/admin/keys",
        headers=stack.admin_headers(),
        json={"source": "web", "name": name, "allowed_origins": origins},
        timeout=30,
    )
    assert created.status_code == 201, created.text
    key: str = created.json()["key"]
    return key


@asynccontextmanager
async def opened(browser: Browser, url: str) -> AsyncIterator[tuple[Page, Seen]]:
    """A page in a fresh context (no SDK state left from another test)."""
    context = await browser.new_context()
    page = await context.new_page()
    seen = Seen()
    seen.attach(page)
    await page.goto(url, wait_until="load")
    try:
        yield page, seen
    finally:
        await context.close()


async def evaluate(page: Page, seen: Seen, script: str, *args: Any) -> Any:
    try:
        async with asyncio.timeout(READY_TIMEOUT_S):
            return await page.evaluate(script, list(args))
    except TimeoutError:
        raise AssertionError(f"the SDK did not finish loading\n{seen.report()}") from None


async def arrived(stack: Stack, run: str, count: int) -> list[dict[str, Any]]:
    """The events of ``run`` in the events topic (each SDK tags its events with it)."""
    topic = stack.settings.kafka.topics().events
    found = await consume_matching(stack.settings, topic, run.encode(), count=count)
    return [orjson.loads(message.value) for message in found]


@pytest.mark.parametrize("batching", [False, True], ids=["per-call", "batching"])
async def test_segment_analytics_next_delivers_to_kafka(
    stack: Stack, pages: str, browser: Browser, batching: bool
) -> None:
    key = web_key(stack, "segment site", [pages])
    run = f"segment-{uuid.uuid4().hex}"
    async with opened(browser, f"{pages}/segment.html") as (page, seen):
        ids = await evaluate(page, seen, "([k, i, r, b]) => window.run(k, i, r, b)",
                             key, stack.ingest, run, batching)
        events = await arrived(stack, run, count=3)
        seen.only_local()
        assert not seen.failed, seen.report()
    by_id = {event["event_id"]: event for event in events}
    assert set(ids) <= set(by_id), (ids, events)
    assert {event["type"] for event in events} == {"identify", "trial_started", "page_view"}
    identify = next(event for event in events if event["type"] == "identify")
    assert identify["subject_id"] == f"user-{run}"
    assert identify["properties"]["email"] == "lan@example.com"
    track = next(event for event in events if event["type"] == "trial_started")
    assert track["properties"]["plan"] == "pro"
    assert track["context"]["library"]["name"] == "analytics.js"
    paths = ["/v1/b"] if batching else ["/v1/i", "/v1/t", "/v1/p"]
    for path in paths:
        assert f"{stack.ingest}{path}" in seen.urls, seen.report()


@pytest.mark.parametrize("beacon", [False, True], ids=["xhr", "beacon"])
async def test_rudderstack_delivers_to_kafka(
    stack: Stack, pages: str, browser: Browser, beacon: bool
) -> None:
    key = web_key(stack, "rudder site", [pages])
    run = f"rudder-{uuid.uuid4().hex}"
    async with opened(browser, f"{pages}/rudder.html") as (page, seen):
        await evaluate(page, seen, "([k, i, r, b]) => window.run(k, i, r, b)",
                       key, stack.ingest, run, beacon)
        events = await arrived(stack, run, count=3)
        seen.only_local()
        assert not seen.failed, seen.report()
    assert {event["type"] for event in events} == {"identify", "trial_started", "page_view"}
    identify = next(event for event in events if event["type"] == "identify")
    # RudderStack sends identify traits only in context.traits.
    assert identify["properties"]["email"] == "lan@example.com"
    assert identify["subject_id"] == f"user-{run}"
    path = "/beacon/v1/batch?writeKey=" if beacon else "/v1/track"
    assert any(url.startswith(f"{stack.ingest}{path}") for url in seen.urls), seen.report()


async def test_a_key_of_another_site_is_refused_and_the_sdk_reads_why(
    stack: Stack, pages: str, browser: Browser
) -> None:
    key = web_key(stack, "another site", ["https://www.elsewhere.example"])
    async with opened(browser, f"{pages}/segment.html") as (page, seen):
        message = await evaluate(page, seen, "([k, i]) => window.refused(k, i)", key, stack.ingest)
    assert "origin_not_allowed" in message, seen.report()
    assert repr(pages) in message
