"""The scorecard page in a real browser against the real platform (``kpipulse dev``).

The page must load without console errors, show every KPI of the example catalog, and
turn a KPI red (with its alert listed) once events drive it below its minimum.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import yaml
from playwright.sync_api import Browser, Page, expect

from tests.e2e.browser import (
    FIRST_ADMIN,
    REPO,
    DevServer,
    PageProblems,
    run_dev_server,
    screenshot,
    sign_in,
)

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(240)]

CATALOG = REPO / "catalog" / "example.yaml"
PERSPECTIVES = ("financial", "customer", "internal_process", "learning_growth")
# A count KPI that a burst of support events can push past its minimum.
BREACH_KPI = "complaints"
BREACH_TIMEOUT_MS = 60_000
BREACH_RED = "rgb(198, 40, 40)"  # --breach in style.css


def catalog() -> list[dict[str, Any]]:
    data = yaml.safe_load(CATALOG.read_text(encoding="utf-8"))
    items: list[dict[str, Any]] = data["kpis"] if isinstance(data, dict) else data
    return items


def events_to_breach(kpi: dict[str, Any]) -> int:
    """How many events put a lower-is-better count strictly above its minimum (plus margin)."""
    assert kpi["direction"] == "lower_is_better", kpi
    count = kpi["formula"]["count"]
    assert (count["source"], count["type"]) == ("support", "complaint_received"), count
    return math.floor(float(kpi["minimum"])) + 1 + 5


@pytest.fixture(scope="module")
def dev_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevServer]:
    with run_dev_server(tmp_path_factory.mktemp("kpipulse-dev"), sources=("support",)) as server:
        yield server


def open_page(
    browser: Browser, server: DevServer, width: int, height: int
) -> tuple[Page, PageProblems]:
    context = browser.new_context(viewport={"width": width, "height": height})
    page = context.new_page()
    problems = PageProblems()
    problems.attach(page)
    page.goto(f"{server.base_url}/", wait_until="load")
    assert server.admin_password is not None
    sign_in(page, FIRST_ADMIN, server.admin_password)
    return page, problems


def test_page_shows_every_catalog_kpi_without_errors(
    browser: Browser, dev_server: DevServer
) -> None:
    keys = [kpi["key"] for kpi in catalog()]
    page, problems = open_page(browser, dev_server, 1366, 900)
    try:
        cards = page.locator("[data-kpi]")
        expect(cards).to_have_count(len(keys), timeout=15_000)
        for key in keys:
            card = page.locator(f'[data-kpi="{key}"]')
            expect(card).to_be_visible()
            assert card.get_attribute("data-status") in {
                "breach",
                "below_target",
                "on_target",
                "no_data",
            }
        # An expired KPI is shown, flagged, and said to be out of the scorecard.
        today = datetime.now(UTC).date()
        for kpi in catalog():
            card = page.locator(f'[data-kpi="{kpi["key"]}"]')
            if kpi["expires_on"] < today:
                expect(card).to_have_attribute("data-expired", "")
                expect(card.locator(".status-text")).to_contain_text("expired")
                expect(card.locator(".f-expiry")).to_have_attribute(
                    "title", "Expired: left out of the scorecard until renewed"
                )
        for perspective in PERSPECTIVES:
            expect(page.locator(f'section[data-perspective="{perspective}"] h2')).to_be_visible()
        expect(page.locator("#error-banner")).to_be_hidden()
        # One refresh cycle later the page is still clean (the poll runs every 5 s).
        page.wait_for_timeout(5_500)
        screenshot(page, "scorecard.png")

        phone, phone_problems = open_page(browser, dev_server, 390, 844)
        expect(phone.locator("[data-kpi]")).to_have_count(len(keys), timeout=15_000)
        # Nothing may overflow sideways on a phone.
        overflow = phone.evaluate(
            "document.documentElement.scrollWidth - document.documentElement.clientWidth"
        )
        screenshot(phone, "scorecard-390.png")
        assert overflow <= 0, f"page is {overflow}px wider than a 390px screen"
        assert phone_problems.clean, phone_problems.summary()
        phone.context.close()
        assert problems.clean, problems.summary()
    finally:
        page.context.close()


def test_kpi_below_minimum_turns_red_and_alert_appears(
    browser: Browser, dev_server: DevServer
) -> None:
    kpi = next(item for item in catalog() if item["key"] == BREACH_KPI)
    page, problems = open_page(browser, dev_server, 1366, 900)
    try:
        card = page.locator(f'[data-kpi="{BREACH_KPI}"]')
        expect(card).to_be_visible(timeout=15_000)

        now = datetime.now(UTC)
        events = [
            {
                "event_id": str(uuid.uuid4()),
                "source": "support",
                "type": "complaint_received",
                "occurred_at": (now - timedelta(minutes=i)).isoformat().replace("+00:00", "Z"),
            }
            for i in range(events_to_breach(kpi))
        ]
        # One complaint from before the window: the KPI's history reaches back past it (a
        # backfill), so its window is full and a breach is a verdict that alerts.
        window = timedelta(days=int(str(kpi["window"]).removesuffix("d")))
        before = now - window - timedelta(hours=1)
        events.append({**events[0], "event_id": str(uuid.uuid4()),
                       "occurred_at": before.isoformat().replace("+00:00", "Z")})
        dev_server.post_events("support", events)

        expect(card).to_have_attribute("data-status", "breach", timeout=BREACH_TIMEOUT_MS)
        expect(card.locator(".status-text")).to_contain_text("Breach")
        expect(card).to_have_css("border-left-color", BREACH_RED)
        alert = page.locator(
            f'[data-alert-kpi="{BREACH_KPI}"][data-alert-condition="below_minimum"]'
        )
        expect(alert).to_be_visible(timeout=BREACH_TIMEOUT_MS)
        screenshot(page, "scorecard-breach.png")

        # The detail view: hash route, history chart (a uPlot canvas), period analysis.
        card.locator(".kpi-link").click()
        expect(page).to_have_url(f"{dev_server.base_url}/#/kpi/{BREACH_KPI}")
        dialog = page.locator("dialog#detail")
        expect(dialog).to_be_visible()
        expect(dialog.locator("#detail-chart canvas")).to_be_visible(timeout=15_000)
        expect(dialog.locator(".detail-summary")).to_have_attribute("data-status", "breach")
        expect(dialog.locator("table").first).to_be_visible()
        screenshot(page, "scorecard-detail.png", full_page=False)
        page.keyboard.press("Escape")
        expect(dialog).to_be_hidden()

        assert problems.clean, problems.summary()
    finally:
        page.context.close()
