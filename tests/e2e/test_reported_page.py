"""A reported KPI entered on the page in Chromium, against ``kpipulse dev``.

HR enters last month's staff turnover in the KPI's detail view: the card turns red, the
below-minimum alert is listed and its email sent; a CSV uploaded on the page corrects it.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, expect

from tests.e2e.browser import (
    FIRST_ADMIN,
    DevServer,
    PageProblems,
    run_dev_server,
    screenshot,
    sign_in,
)

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(240)]

KPI = "staff_turnover"  # reported, monthly, lower is better: minimum 0.05, target 0.02
WAIT_MS = 60_000


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("kpipulse-dev-reported")


@pytest.fixture(scope="module")
def dev_server(data_dir: Path) -> Iterator[DevServer]:
    with run_dev_server(data_dir, sources=("support",)) as server:
        yield server


def mails_about(data_dir: Path, text: str) -> list[str]:
    found = []
    for path in sorted((data_dir / "mail").glob("*.eml")):
        body = path.read_text(encoding="utf-8", errors="replace")
        if text in body:
            found.append(body)
    return found


def test_a_value_entered_on_the_page_is_scored_and_alerts(
    browser: Browser, dev_server: DevServer, data_dir: Path, tmp_path: Path
) -> None:
    assert dev_server.admin_token, dev_server.log_tail()
    context = browser.new_context(viewport={"width": 1366, "height": 900})
    page = context.new_page()
    problems = PageProblems()
    problems.attach(page)
    try:
        page.goto(f"{dev_server.base_url}/#/kpi/{KPI}", wait_until="load")
        assert dev_server.admin_password is not None
        sign_in(page, FIRST_ADMIN, dev_server.admin_password)
        dialog = page.locator("dialog#detail")
        form = dialog.locator("#reported-form")
        expect(form).to_be_visible(timeout=15_000)
        period = dialog.locator("#reported-period option").nth(1)  # last month
        expect(period).to_be_attached(timeout=15_000)
        last_month = period.get_attribute("value")
        assert last_month is not None
        dialog.locator("#reported-period").select_option(last_month)
        dialog.locator("#reported-value").fill("0.09")
        dialog.locator("#reported-note").fill("three leavers")
        dialog.locator("#reported-token").fill(dev_server.admin_token)
        dialog.locator("#reported-save").click()
        expect(dialog.locator("#reported-message")).to_have_text(
            f"Saved {last_month}: 0.09.", timeout=15_000
        )
        expect(dialog.locator("#reported-values")).to_contain_text("three leavers")
        screenshot(page, "reported-entry.png", full_page=False)
        page.keyboard.press("Escape")

        card = page.locator(f'[data-kpi="{KPI}"]')
        expect(card).to_have_attribute("data-status", "breach", timeout=WAIT_MS)
        alert = page.locator(f'[data-alert-kpi="{KPI}"][data-alert-condition="below_minimum"]')
        expect(alert).to_be_visible(timeout=WAIT_MS)
        sent = 0
        for _ in range(120):
            sent = len(mails_about(data_dir, "Staff turnover is worse than its minimum"))
            if sent:
                break
            page.wait_for_timeout(500)
        assert sent == 1, dev_server.log_tail()

        # A correction uploaded as CSV on the page: on target again, with its history.
        csv = tmp_path / "turnover.csv"
        csv.write_text(f"kpi_key,period_start,value,note\n{KPI},{last_month},0.01,recount\n")
        card.locator(".kpi-link").click()
        expect(form).to_be_visible(timeout=15_000)
        dialog.locator("#reported-file").set_input_files(str(csv))
        dialog.locator("#reported-upload").click()
        expect(dialog.locator("#reported-message")).to_have_text(
            "Imported 1 value(s).", timeout=15_000
        )
        page.keyboard.press("Escape")
        expect(card).to_have_attribute("data-status", "on_target", timeout=WAIT_MS)
        history = httpx.get(
            f"{dev_server.base_url}/v1/kpis/{KPI}/values",
            headers=dev_server.admin_headers(),
            timeout=10,
        ).json()
        assert [c["old_value"] for c in history["changes"]] == [0.09, None]
        assert problems.clean, problems.summary()
    finally:
        context.close()
