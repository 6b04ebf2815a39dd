"""Sign-in on the scorecard page, in Chromium, against ``kpipulse dev``.

A viewer in group ``sales`` signs in with the one-time password ``users create`` gave,
picks their own, and sees the KPIs shared with sales and no other; a change sent with the
CSRF token of an earlier session is refused; a wrong password is answered on the form; the
owner of a KPI acknowledges its alert from the page, and the acknowledgement names them.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
import yaml
from playwright.sync_api import Browser, Page, expect

from tests.e2e.browser import (
    REPO,
    DevServer,
    PageProblems,
    run_dev_server,
    screenshot,
    sign_in,
)

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(240)]

CATALOG = REPO / "catalog" / "example.yaml"


def visible_to(groups: set[str]) -> set[str]:
    data = yaml.safe_load(CATALOG.read_text(encoding="utf-8"))
    items: list[dict[str, Any]] = data["kpis"] if isinstance(data, dict) else data
    return {k["key"] for k in items if not k.get("viewers") or groups & set(k["viewers"])}


@pytest.fixture(scope="module")
def dev_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevServer]:
    with run_dev_server(tmp_path_factory.mktemp("kpipulse-dev-access")) as server:
        yield server


def new_user(server: DevServer, groups: list[str]) -> dict[str, str]:
    response = httpx.post(
        f"{server.base_url}/v1/admin/users",
        json={"email": f"p-{uuid.uuid4().hex[:6]}@example.com", "role": "viewer",
              "groups": groups},
        headers=server.admin_headers(),
        timeout=30,
    )
    assert response.status_code == 201, response.text
    made: dict[str, str] = response.json()
    return made


def signed_in_viewer(browser: Browser, server: DevServer, groups: list[str]) -> Page:
    """A fresh browser context where a new viewer signed in and chose a password."""
    person = new_user(server, groups)
    page = browser.new_context(viewport={"width": 1366, "height": 900}).new_page()
    page.goto(f"{server.base_url}/", wait_until="load")
    expect(page.locator("#signin")).to_be_visible()
    expect(page.locator("#main")).to_be_hidden()
    sign_in(page, person["email"], person["password"])
    expect(page.locator("#password-change")).to_be_visible()
    page.locator("#password-current").fill(person["password"])
    page.locator("#password-new").fill("a-new-password-" + uuid.uuid4().hex[:8])
    page.locator("#password-submit").click()
    expect(page.locator("#main")).to_be_visible()
    expect(page.locator("#whoami-text")).to_contain_text(person["email"])
    return page


def test_a_sales_viewer_sees_only_the_kpis_shared_with_sales(
    browser: Browser, dev_server: DevServer
) -> None:
    expected = visible_to({"sales"})
    page = signed_in_viewer(browser, dev_server, ["sales"])
    problems = PageProblems()
    problems.attach(page)
    try:
        cards = page.locator("[data-kpi]")
        expect(cards).to_have_count(len(expected), timeout=15_000)
        shown = {cards.nth(i).get_attribute("data-kpi") for i in range(cards.count())}
        assert shown == expected
        for hidden in ("revenue", "burn_rate", "customer_lifetime_value"):
            expect(page.locator(f'[data-kpi="{hidden}"]')).to_have_count(0)
        # A hidden KPI's detail route shows no data either.
        page.goto(f"{dev_server.base_url}/#/kpi/revenue")
        expect(page.locator("#detail-body")).not_to_contain_text("Thu Do")
        screenshot(page, "scorecard-sales-viewer.png")
        page.reload(wait_until="load")  # the session survives a reload
        expect(page.locator("[data-kpi]")).to_have_count(len(expected), timeout=15_000)
        assert problems.clean or all("403" in e for e in problems.console_errors), (
            problems.summary()
        )
    finally:
        page.context.close()


def test_a_stale_csrf_token_is_refused(browser: Browser, dev_server: DevServer) -> None:
    page = signed_in_viewer(browser, dev_server, ["support"])
    try:
        fetch_session = "() => fetch('/v1/session').then(r => r.json())"
        old = page.evaluate(fetch_session)["csrf_token"]
        page.locator("#signout").click()
        expect(page.locator("#signin")).to_be_visible()
        # Without a session the API refuses reads.
        status = page.evaluate("() => fetch('/v1/kpis').then(r => r.status)")
        assert status == 401
        email = page.locator("#whoami-text").text_content() or ""
        assert email == "" or "@" in email
        # A new session, and a change sent with the earlier session's token.
        person = new_user(dev_server, ["support"])
        sign_in(page, person["email"], person["password"])
        expect(page.locator("#password-change")).to_be_visible()
        answer = page.evaluate(
            """(token) => fetch('/v1/session', {method: 'DELETE',
                 headers: {'X-CSRF-Token': token}}).then(async r => [r.status, await r.text()])""",
            old,
        )
        assert answer[0] == 403 and "CSRF token invalid or stale" in answer[1], answer
        missing = page.evaluate(
            "() => fetch('/v1/session', {method: 'DELETE'}).then(r => r.status)"
        )
        assert missing == 403
        current = page.evaluate(fetch_session)["csrf_token"]
        assert current != old
        ok = page.evaluate(
            """(token) => fetch('/v1/session', {method: 'DELETE',
                 headers: {'X-CSRF-Token': token}}).then(r => r.status)""",
            current,
        )
        assert ok == 204
    finally:
        page.context.close()


def test_a_wrong_password_is_answered_on_the_form(
    browser: Browser, dev_server: DevServer
) -> None:
    page = browser.new_context().new_page()
    try:
        page.goto(f"{dev_server.base_url}/", wait_until="load")
        sign_in(page, "nobody@example.com", "not-the-password")
        expect(page.locator("#signin-error")).to_contain_text("wrong email or password")
        expect(page.locator("#main")).to_be_hidden()
        cookies = page.context.cookies()
        assert not [c for c in cookies if c["name"] == "kpipulse_session"]
    finally:
        page.context.close()


def test_the_session_cookie_is_httponly_and_strict(
    browser: Browser, dev_server: DevServer
) -> None:
    page = signed_in_viewer(browser, dev_server, ["marketing"])
    try:
        (cookie,) = [c for c in page.context.cookies() if c["name"] == "kpipulse_session"]
        assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"
        assert page.evaluate("() => document.cookie").find("kpipulse_session") == -1
    finally:
        page.context.close()


def test_an_owner_acks_from_the_page_and_others_do_not_see_it(
    browser: Browser, dev_server: DevServer
) -> None:
    owner = "binh@example.com"  # owns `complaints` in the example catalog
    made = httpx.post(
        f"{dev_server.base_url}/v1/admin/users",
        json={"email": owner, "role": "viewer", "groups": []},
        headers=dev_server.admin_headers(), timeout=30,
    )
    assert made.status_code == 201, made.text
    now = datetime.now(UTC)
    dev_server.post_events("support", [
        {"source": "support", "type": "complaint_received",
         "occurred_at": (now - timedelta(minutes=i)).isoformat()}
        for i in range(40)
    ] + [
        # One from before the window: the history covers it, so the breach alerts.
        {"source": "support", "type": "complaint_received",
         "occurred_at": (now - timedelta(days=30, hours=1)).isoformat()},
    ])
    page = browser.new_context(viewport={"width": 1366, "height": 900}).new_page()
    try:
        page.goto(f"{dev_server.base_url}/", wait_until="load")
        sign_in(page, owner, made.json()["password"])
        page.locator("#password-current").fill(made.json()["password"])
        page.locator("#password-new").fill("binh-owns-complaints-1")
        page.locator("#password-submit").click()
        alert = page.locator('[data-alert-kpi="complaints"][data-alert-condition="below_minimum"]')
        expect(alert).to_be_visible(timeout=60_000)
        page.once("dialog", lambda dialog: dialog.accept("looking into the spike"))
        alert.locator('button[data-action="ack"]').click()
        expect(alert).to_contain_text(f"acknowledged by {owner}", timeout=15_000)
        screenshot(page, "scorecard-owner-ack.png")
    finally:
        page.context.close()
    listed = httpx.get(f"{dev_server.base_url}/v1/alerts", params={"kpi_key": "complaints"},
                       headers=dev_server.admin_headers(), timeout=10).json()
    acked = [a for a in listed if a["condition"] == "below_minimum"]
    assert acked and acked[0]["acked_by"] == owner
    assert acked[0]["ack_note"] == "looking into the spike"
    # A marketing viewer sees neither the KPI nor its alert.
    viewer = signed_in_viewer(browser, dev_server, ["marketing"])
    try:
        expect(viewer.locator("[data-kpi]").first).to_be_visible(timeout=15_000)
        expect(viewer.locator('[data-alert-kpi="complaints"]')).to_have_count(0)
        expect(viewer.locator('[data-kpi="complaints"]')).to_have_count(0)
    finally:
        viewer.context.close()
