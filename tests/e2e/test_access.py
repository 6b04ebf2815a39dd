"""Who sees and changes what, on the real stack (three processes, PostgreSQL, Kafka).

People: a viewer in group ``sales``, an editor in group ``finance``, and the admin token.
Two probe KPIs, one for finance and one for sales, are driven below their minimum so that
each has a firing alert and notifications. The matrix then asks every read endpoint as
each caller: the sales viewer finds no finance KPI anywhere (list, detail, history, change
log, scorecard roll-up, alerts, silences, notifications), and every refusal is the right
status with a message naming the problem.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from playwright.sync_api import expect, sync_playwright

from tests.e2e.browser import chromium_path, launch_chromium, sign_in
from tests.e2e.conftest import Stack

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]

FINANCE_KPIS = {"revenue", "burn_rate", "customer_lifetime_value"}


@dataclass(frozen=True)
class World:
    stack: Stack
    viewer: dict[str, str]  # group sales
    editor: dict[str, str]  # group finance, owner of the finance probe
    finance_probe: str
    sales_probe: str

    def bearer(self, who: dict[str, str]) -> dict[str, str]:
        return {"Authorization": f"Bearer {who['token']}"}


def put_probe(stack: Stack, key: str, *, viewers: list[str], owner: str, department: str) -> None:
    template = httpx.get(
        f"{stack.scoring}/v1/kpis/complaints", headers=stack.admin_headers(), timeout=10
    ).json()["definition"]
    definition = {
        **template,
        "key": key,
        "name": f"Access probe {key}",
        "department": department,
        "perspective": "financial" if department == "finance" else "customer",
        "viewers": viewers,
        "owners": [{"name": "Probe owner", "email": owner}],
        "formula": {"count": {"source": "support", "type": key}},
        "minimum": 0,
        "target": 0,
        "baseline": 0,
        "leading_indicators": [],
    }
    response = httpx.put(f"{stack.scoring}/v1/kpis/{key}", json=definition,
                         headers=stack.admin_headers(), timeout=10)
    assert response.status_code == 200, response.text


def firing_alert_keys(stack: Stack) -> set[str]:
    response = httpx.get(f"{stack.alerts}/v1/alerts", params={"state": "firing", "limit": 1000},
                         headers=stack.admin_headers(), timeout=10)
    assert response.status_code == 200, response.text
    return {alert["kpi_key"] for alert in response.json()}


@pytest.fixture(scope="module")
def world(stack: Stack) -> Iterator[World]:
    unique = uuid.uuid4().hex[:8]
    viewer = stack.create_user(f"sales-{unique}@example.com", "viewer", ["sales"])
    editor = stack.create_user(f"finance-{unique}@example.com", "editor", ["finance"])
    finance_probe, sales_probe = f"fin_probe_{unique}", f"sales_probe_{unique}"
    put_probe(stack, finance_probe, viewers=["finance"], owner=editor["email"],
              department="finance")
    put_probe(stack, sales_probe, viewers=["sales"], owner="nobody@example.com",
              department="sales")
    # With one event from before the window too: the history covers the window, so a
    # breach is a verdict that alerts (a window still filling does not).
    template_window = timedelta(days=30)  # the `complaints` template's window
    before = (datetime.now(UTC) - template_window - timedelta(hours=1)).isoformat()
    events = [
        event
        for key in (finance_probe, sales_probe)
        for event in (
            {"source": "support", "type": key},
            {"source": "support", "type": key, "occurred_at": before},
        )
    ]
    accepted = httpx.post(f"{stack.ingest}/v1/events", json={"batch": events},
                          headers=stack.key_headers("support"), timeout=10)
    assert accepted.status_code == 200, accepted.text
    deadline = time.monotonic() + 120
    while not {finance_probe, sales_probe} <= firing_alert_keys(stack):
        assert time.monotonic() < deadline, "the probes' alerts did not fire"
        time.sleep(0.5)
    yield World(stack, viewer, editor, finance_probe, sales_probe)
    for key in (finance_probe, sales_probe):
        httpx.delete(f"{stack.scoring}/v1/kpis/{key}", headers=stack.admin_headers(), timeout=10)


def get(url: str, headers: dict[str, str], **params: Any) -> httpx.Response:
    return httpx.get(url, headers=headers, params=params or None, timeout=10)


def test_reads_without_an_identity_are_401_naming_the_problem(world: World) -> None:
    stack = world.stack
    urls = [
        f"{stack.scoring}/v1/kpis", f"{stack.scoring}/v1/scorecard",
        f"{stack.scoring}/v1/kpis/complaints", f"{stack.scoring}/v1/kpis/complaints/history",
        f"{stack.scoring}/v1/kpis/complaints/changes", f"{stack.alerts}/v1/alerts",
        f"{stack.alerts}/v1/silences", f"{stack.alerts}/v1/notifications",
    ]
    for url in urls:
        missing = get(url, {})
        assert missing.status_code == 401, url
        assert "personal API token" in missing.json()["detail"]
        assert missing.headers["www-authenticate"] == "Bearer"
        unknown = get(url, {"Authorization": "Bearer kpt_" + "x" * 43})
        assert unknown.status_code == 401 and "revoked" in unknown.json()["detail"], url


def test_a_sales_viewer_finds_no_finance_kpi_anywhere(world: World) -> None:
    stack, me = world.stack, world.bearer(world.viewer)
    hidden = FINANCE_KPIS | {world.finance_probe}

    listing = get(f"{stack.scoring}/v1/kpis", me).json()["kpis"]
    keys = {kpi["key"] for kpi in listing}
    assert world.sales_probe in keys and "leads_total" in keys
    assert not keys & hidden
    assert {kpi["department"] for kpi in listing}.isdisjoint({"finance"})
    for kpi in listing:  # links to hidden KPIs are left out too
        assert not set(kpi["leading_indicators"]) & hidden
        assert not set(kpi["early_warning"]) & hidden

    card = get(f"{stack.scoring}/v1/scorecard", me).json()
    in_card = {key for part in card["perspectives"] for key in part["kpis"]}
    assert world.sales_probe in in_card and not in_card & hidden

    for key in sorted(hidden):
        for suffix in ("", "/history", "/changes"):
            answer = get(f"{stack.scoring}/v1/kpis/{key}{suffix}", me)
            assert answer.status_code == 403, (key, suffix, answer.text)
            assert "not shared with you" in answer.json()["detail"]
    detail = get(f"{stack.scoring}/v1/kpis/churn_rate", me).json()
    links = {(row["leading"], row["lagging"]) for row in detail["lead_lag"]}
    assert all(not {a, b} & hidden for a, b in links)

    alerts = get(f"{stack.alerts}/v1/alerts", me, limit=1000).json()
    alert_keys = {alert["kpi_key"] for alert in alerts}
    assert world.sales_probe in alert_keys and not alert_keys & hidden
    by_key = get(f"{stack.alerts}/v1/alerts", me, kpi_key=world.finance_probe).json()
    assert by_key == []

    notes = get(f"{stack.alerts}/v1/notifications", me, limit=1000).json()
    assert {n["kpi_key"] for n in notes} >= {world.sales_probe}
    assert not {n["kpi_key"] for n in notes} & hidden
    for note in notes:  # targets masked, errors withheld from non-admins
        assert "***@" in note["target"] or note["target"].endswith("[redacted]"), note
        assert note["last_error"] in (None, "delivery failed (details for admins)")


def test_the_finance_editor_sees_finance_and_the_admin_sees_all(world: World) -> None:
    stack = world.stack
    editor = {k["key"] for k in get(f"{stack.scoring}/v1/kpis", world.bearer(world.editor))
              .json()["kpis"]}
    assert {"revenue", world.finance_probe} <= editor and world.sales_probe not in editor
    admin = {k["key"] for k in get(f"{stack.scoring}/v1/kpis", stack.admin_headers())
             .json()["kpis"]}
    assert {"revenue", world.finance_probe, world.sales_probe} <= admin
    notes = get(f"{stack.alerts}/v1/notifications", stack.admin_headers(), limit=1000).json()
    emails = {n["target"] for n in notes if n["kpi_key"] == world.finance_probe}
    assert world.editor["email"] in emails  # admins see whom it went to


def test_changes_follow_ownership_and_groups(world: World) -> None:
    stack = world.stack
    definition = get(f"{stack.scoring}/v1/kpis/{world.finance_probe}",
                     stack.admin_headers()).json()["definition"]
    changed = {**definition, "target": 0, "minimum": 1}
    url = f"{stack.scoring}/v1/kpis/{world.finance_probe}"
    as_viewer = httpx.put(url, json=changed, headers=world.bearer(world.viewer), timeout=10)
    assert as_viewer.status_code == 403 and "you may not change" in as_viewer.text
    as_editor = httpx.put(url, json=changed, headers=world.bearer(world.editor), timeout=10)
    assert as_editor.status_code == 200, as_editor.text
    changes = get(f"{url}/changes", world.bearer(world.editor)).json()["changes"]
    assert changes[-1]["actor"] == world.editor["email"]
    # The editor may not touch a KPI outside finance, nor a sales viewer retire anything.
    sales = f"{stack.scoring}/v1/kpis/{world.sales_probe}"
    sales_def = get(sales, stack.admin_headers()).json()["definition"]
    refused = httpx.put(sales, json=sales_def, headers=world.bearer(world.editor), timeout=10)
    assert refused.status_code == 403 and "you may not change" in refused.text
    retire = httpx.delete(sales, headers=world.bearer(world.viewer), timeout=10)
    assert retire.status_code == 403 and "may not retire" in retire.text


def test_acks_and_silences_need_the_right_to_change_the_kpi(world: World) -> None:
    stack = world.stack
    alerts = get(f"{stack.alerts}/v1/alerts", stack.admin_headers(), state="firing",
                 kpi_key=world.sales_probe).json()
    sales_alert = alerts[0]["id"]
    refused = httpx.post(f"{stack.alerts}/v1/alerts/{sales_alert}/ack", json={"note": "x"},
                         headers=world.bearer(world.viewer), timeout=10)
    assert refused.status_code == 403 and "may not ack" in refused.text
    hidden = httpx.post(f"{stack.alerts}/v1/alerts/{sales_alert}/ack", json={"note": "x"},
                        headers=world.bearer(world.editor), timeout=10)
    assert hidden.status_code == 404  # the editor cannot see sales alerts at all
    silence = httpx.post(
        f"{stack.alerts}/v1/silences",
        json={"kpi_key": world.finance_probe, "duration_s": 60, "reason": "month-end close",
              "created_by": "someone-else"},
        headers=world.bearer(world.editor), timeout=10,
    )
    assert silence.status_code == 201, silence.text
    assert silence.json()["created_by"] == world.editor["email"]
    mine = get(f"{stack.alerts}/v1/silences", world.bearer(world.viewer)).json()
    assert world.finance_probe not in {s["kpi_key"] for s in mine}


def test_revoked_tokens_and_disabled_users_are_refused(world: World) -> None:
    stack = world.stack
    person = stack.create_user(f"leaver-{uuid.uuid4().hex[:6]}@example.com", "viewer", [])
    me = world.bearer(person)
    assert get(f"{stack.scoring}/v1/kpis", me).status_code == 200
    extra = httpx.post(f"{stack.scoring}/v1/admin/users/{person['email']}/tokens",
                       json={"name": "ci"}, headers=stack.admin_headers(), timeout=10)
    assert extra.status_code == 201, extra.text
    revoked = httpx.delete(f"{stack.scoring}/v1/admin/tokens/{extra.json()['id']}",
                           headers=stack.admin_headers(), timeout=10)
    assert revoked.status_code == 204
    gone = get(f"{stack.scoring}/v1/kpis", {"Authorization": f"Bearer {extra.json()['token']}"})
    assert gone.status_code == 401
    not_admin = httpx.get(f"{stack.scoring}/v1/admin/users", headers=me, timeout=10)
    assert not_admin.status_code == 403 and "admin role needed" in not_admin.text
    disabled = httpx.delete(f"{stack.scoring}/v1/admin/users/{person['email']}",
                            headers=stack.admin_headers(), timeout=10)
    assert disabled.status_code == 200
    assert get(f"{stack.scoring}/v1/kpis", me).status_code == 401
    assert get(f"{stack.alerts}/v1/alerts", me).status_code == 401


def test_kpi_gauges_on_metrics_need_the_metrics_token(world: World) -> None:
    stack = world.stack
    public = httpx.get(f"{stack.scoring}/metrics", timeout=10)
    assert public.status_code == 200
    assert "kpipulse_http_requests_total" in public.text
    assert "kpipulse_kpi_" not in public.text
    token = {"Authorization": f"Bearer {stack.metrics_token}"}
    full = httpx.get(f"{stack.scoring}/metrics", headers=token, timeout=10)
    assert f'kpipulse_kpi_value{{kpi="{world.finance_probe}"}}' in full.text
    wrong = httpx.get(f"{stack.scoring}/metrics", headers=world.bearer(world.viewer))
    assert wrong.status_code == 401 and "metrics token" in wrong.text


def test_owner_urls_are_write_only(stack: Stack) -> None:
    headers = stack.admin_headers()
    # The catalog file's KPIs are read with their URLs redacted too.
    example = get(f"{stack.scoring}/v1/kpis/leads_total", headers).json()
    assert "hooks.slack.example.com/services" not in str(example)
    assert example["definition"]["owners"][0]["slack_webhook_url"].startswith("https://redacted.invalid/")
    # A KPI managed through the API, with a Slack owner.
    key = f"url_probe_{uuid.uuid4().hex[:8]}"
    slack = f"https://hooks.slack.example.com/services/T000/B000/{uuid.uuid4().hex}"
    put_probe(stack, key, viewers=["marketing"], owner="url@example.com", department="sales")
    url = f"{stack.scoring}/v1/kpis/{key}"
    plain = get(url, headers).json()["definition"]
    plain["owners"] = [{**plain["owners"][0], "slack_webhook_url": slack}]
    assert httpx.put(url, json=plain, headers=headers, timeout=10).status_code == 200
    before = get(url, headers).json()
    assert slack not in str(before)
    shown = before["definition"]["owners"][0]["slack_webhook_url"]
    assert shown.startswith("https://redacted.invalid/")
    # Written back as read: the stored URL stays (same fingerprint), nothing changes.
    same = httpx.put(url, json=before["definition"], headers=headers, timeout=10)
    assert same.status_code == 200 and same.json()["changes"] == ["no changes"], same.text
    new_url = f"https://hooks.slack.example.com/services/T000/B000/{uuid.uuid4().hex}"
    owners = [{**before["definition"]["owners"][0], "slack_webhook_url": new_url}]
    try:
        changed = httpx.put(url, json={**before["definition"], "owners": owners},
                            headers=headers, timeout=10)
        assert changed.status_code == 200, changed.text
        assert new_url not in changed.text and slack not in changed.text
        history = get(f"{url}/changes", headers)
        assert history.status_code == 200
        assert new_url not in history.text and slack not in history.text
        assert history.json()["changes"][-1]["changes"][0]["field"] == "owners"
        after = get(url, headers).json()["definition"]["owners"][0]["slack_webhook_url"]
        assert after != shown and after.startswith("https://redacted.invalid/")
    finally:
        httpx.delete(url, headers=headers, timeout=10)


def test_sign_in_takes_only_json_and_answers_wrong_passwords_with_401(stack: Stack) -> None:
    person = stack.create_user(f"form-{uuid.uuid4().hex[:6]}@example.com", "viewer", [])
    form = httpx.post(
        f"{stack.scoring}/v1/session",
        content=f"email={person['email']}&password={person['password']}",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
        timeout=10,
    )
    assert form.status_code == 422 and "kpipulse_session" not in form.cookies
    wrong = httpx.post(f"{stack.scoring}/v1/session",
                       json={"email": person["email"], "password": "nope"}, timeout=10)
    assert wrong.status_code == 401 and wrong.json()["detail"] == "wrong email or password"
    right = httpx.post(f"{stack.scoring}/v1/session",
                       json={"email": person["email"], "password": person["password"]})
    assert right.status_code == 200 and right.json()["must_change_password"] is True
    cookie = right.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=strict" in cookie
    # With the one-time password still in place, reads wait for a new one.
    session = {"Cookie": f"kpipulse_session={right.cookies['kpipulse_session']}"}
    waiting = httpx.get(f"{stack.scoring}/v1/kpis", headers=session, timeout=10)
    assert waiting.status_code == 403 and "one-time password" in waiting.text


def test_the_page_on_the_stack_shows_a_viewer_only_their_alerts(world: World) -> None:
    """Scoring serves the page, alerts answers it from another origin with the session."""
    stack = world.stack
    if chromium_path() is None:
        pytest.fail("Chromium is missing: apt-get install -y chromium")
    person = stack.create_user(f"page-{uuid.uuid4().hex[:6]}@example.com", "viewer", ["sales"])
    with sync_playwright() as playwright:
        browser = launch_chromium(playwright)
        try:
            page = browser.new_page()
            page.goto(f"{stack.scoring}/", wait_until="load")
            sign_in(page, person["email"], person["password"])
            page.locator("#password-current").fill(person["password"])
            page.locator("#password-new").fill("sales-viewer-password-1")
            page.locator("#password-submit").click()
            expect(page.locator(f'[data-alert-kpi="{world.sales_probe}"]')).to_be_visible(
                timeout=30_000
            )
            expect(page.locator(f'[data-alert-kpi="{world.finance_probe}"]')).to_have_count(0)
            expect(page.locator('[data-kpi="revenue"]')).to_have_count(0)
            expect(page.locator(f'[data-kpi="{world.sales_probe}"]')).to_be_visible()
            # A silence from the page: refused for a viewer, with the reason on the banner.
            page.once("dialog", lambda dialog: dialog.accept("campaign paused"))
            item = page.locator(f'[data-alert-kpi="{world.sales_probe}"]')
            item.locator('button[data-action="silence"]').click()
            expect(page.locator("#error-text")).to_contain_text("may not ack or silence")
        finally:
            browser.close()
