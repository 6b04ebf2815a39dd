"""The managers' views in a real browser: Vietnamese and English, department and owner
filters kept in the URL, CSV exports that follow the view, and the A4 printed report."""

from __future__ import annotations

import csv
import io
import re
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
from tests.unit.i18n.test_catalogs import english_leftovers

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(240)]

CATALOG = REPO / "catalog" / "example.yaml"
DEPARTMENT = "support"
OWNER_EMAIL = "hoa@example.com"
BREACH_KPI = "complaints"


def catalog() -> list[dict[str, Any]]:
    data = yaml.safe_load(CATALOG.read_text(encoding="utf-8"))
    items: list[dict[str, Any]] = data["kpis"] if isinstance(data, dict) else data
    return items


def written_by_people(items: list[dict[str, Any]]) -> list[str]:
    """Catalog text shown as written (names, objectives, units...): not the page's own."""
    found: set[str] = set()
    for kpi in items:
        found.update([kpi["key"], kpi["name"], kpi.get("objective", ""), str(kpi.get("unit", ""))])
        found.update([kpi.get("data_collection", ""), *kpi.get("viewers", [])])
        found.update([kpi.get("department", ""), kpi.get("department", "").replace("_", " ")])
        found.update(o.get("name", "") for o in kpi.get("owners", []))
    return sorted((s for s in found if s), key=len, reverse=True)


@pytest.fixture(scope="module")
def dev_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevServer]:
    with run_dev_server(tmp_path_factory.mktemp("kpipulse-views"), sources=("support",)) as server:
        yield server


def open_page(browser: Browser, server: DevServer, url: str) -> tuple[Page, PageProblems]:
    """A new browser context on ``url``, signed in as the first admin."""
    context = browser.new_context(viewport={"width": 1366, "height": 900})
    page = context.new_page()
    problems = PageProblems()
    problems.attach(page)
    page.goto(url, wait_until="load")
    assert server.admin_password is not None
    sign_in(page, FIRST_ADMIN, server.admin_password)
    # Signed in once the page shows who: requests of the page carry the session from then.
    expect(page.locator("#whoami")).to_be_visible(timeout=15_000)
    return page, problems


def breach_complaints(server: DevServer) -> None:
    """Complaints above their minimum over a full window: a firing alert with a value."""
    kpi = next(item for item in catalog() if item["key"] == BREACH_KPI)
    now = datetime.now(UTC)
    stamps = [now - timedelta(minutes=i) for i in range(int(kpi["minimum"]) + 6)]
    window = timedelta(days=int(str(kpi["window"]).removesuffix("d")))
    stamps.append(now - window - timedelta(hours=1))  # history before the window: full
    server.post_events(
        "support",
        [
            {
                "event_id": str(uuid.uuid4()),
                "source": "support",
                "type": "complaint_received",
                "occurred_at": at.isoformat().replace("+00:00", "Z"),
            }
            for at in stamps
        ],
    )


def test_vietnamese_page_has_no_english_left(browser: Browser, dev_server: DevServer) -> None:
    items = catalog()
    page, problems = open_page(browser, dev_server, f"{dev_server.base_url}/?lang=vi")
    try:
        expect(page.locator("[data-kpi]")).to_have_count(len(items), timeout=15_000)
        expect(page.locator("#updated")).to_contain_text("Cập nhật lúc")
        assert page.locator("html").get_attribute("lang") == "vi"
        # A firing alert and a KPI with values: their texts are part of the page too.
        breach_complaints(dev_server)
        alert = page.locator(f'[data-alert-kpi="{BREACH_KPI}"]')
        expect(alert).to_be_visible(timeout=60_000)
        expect(alert).to_contain_text("Dưới mức tối thiểu")
        expect(page.locator(f'[data-kpi="{BREACH_KPI}"] .status-text')).to_contain_text("Vi phạm")
        # Open a KPI's detail: its chart legend, tables and facts.
        page.locator(f'[data-kpi="{BREACH_KPI}"] .kpi-link').click()
        expect(page.locator("#detail-chart canvas")).to_be_visible(timeout=15_000)
        expect(page.locator("#detail-body")).to_contain_text("Phân tích theo kỳ", timeout=15_000)
        text = page.evaluate("document.body.innerText")
        for written in written_by_people(items):
            text = text.replace(written, " ")
        text = text.replace("KPI Pulse", " ").replace("English", " ")
        assert english_leftovers(text) == [], text
        screenshot(page, "scorecard-vi.png")
        page.locator("#detail-close").click()
        assert problems.clean, problems.summary()
    finally:
        page.context.close()


def test_department_and_owner_views_are_kept_in_the_link(
    browser: Browser, dev_server: DevServer
) -> None:
    items = catalog()
    in_department = {k["key"] for k in items if k.get("department") == DEPARTMENT}
    page, problems = open_page(browser, dev_server, f"{dev_server.base_url}/")
    try:
        expect(page.locator("[data-kpi]")).to_have_count(len(items), timeout=15_000)
        page.select_option("#filter-department", DEPARTMENT)
        expect(page.locator("[data-kpi]:visible")).to_have_count(len(in_department))
        visible = set(page.locator("[data-kpi]:visible").evaluate_all(
            "cards => cards.map(c => c.dataset.kpi)"
        ))
        assert visible == in_department
        assert f"department={DEPARTMENT}" in page.url
        link = page.url

        # The link alone (a new tab, another manager) opens the same view.
        other, other_problems = open_page(browser, dev_server, link)
        shown = other.locator("[data-kpi]:visible")
        expect(shown).to_have_count(len(in_department), timeout=15_000)
        assert other.locator("#filter-department").input_value() == DEPARTMENT
        other.context.close()
        assert other_problems.clean, other_problems.summary()

        # "My KPIs": one owner's, across departments.
        page.select_option("#filter-department", "")
        page.select_option("#filter-owner", OWNER_EMAIL)
        owned = {k["key"] for k in items if any(o.get("email") == OWNER_EMAIL for o in k["owners"])}
        expect(page.locator("[data-kpi]:visible")).to_have_count(len(owned))
        assert "owner=hoa%40example.com" in page.url

        # The CSV button exports exactly the view.
        href = page.locator("#export-csv").get_attribute("href")
        assert href is not None and "owner=hoa%40example.com" in href
        response = page.request.get(f"{dev_server.base_url}{href}")
        assert response.ok and response.headers["content-type"].startswith("text/csv")
        rows = list(csv.reader(io.StringIO(response.text().lstrip("\ufeff"))))
        assert rows[0][:2] == ["Key", "Name"]
        assert {row[0] for row in rows[1:]} == owned
        assert problems.clean, problems.summary()
    finally:
        page.context.close()


def test_history_csv_and_vietnamese_headers(dev_server: DevServer, browser: Browser) -> None:
    key = catalog()[0]["key"]
    page, _ = open_page(browser, dev_server, f"{dev_server.base_url}/?lang=vi")
    try:
        response = page.request.get(
            f"{dev_server.base_url}/v1/kpis/{key}/history.csv?lang=vi&step=3600"
        )
        assert response.ok
        assert f'filename="{key}-history.csv"' in response.headers["content-disposition"]
        rows = list(csv.reader(io.StringIO(response.text().lstrip("\ufeff"))))
        assert rows[0] == ["Thời điểm", "Giá trị", "Trạng thái"]
        assert len(rows) > 1 and all(re.match(r"\d{4}-\d\d-\d\dT", r[0]) for r in rows[1:])
        missing = page.request.get(f"{dev_server.base_url}/v1/kpis/no_such_kpi/history.csv")
        assert missing.status == 404
        listed = page.request.get(f"{dev_server.base_url}/v1/kpis/export.csv?lang=vi")
        header = next(csv.reader(io.StringIO(listed.text().lstrip("\ufeff"))))
        assert header[:3] == ["Mã", "Tên", "Khía cạnh"]
    finally:
        page.context.close()


def test_printed_report_is_a4_without_controls(browser: Browser, dev_server: DevServer) -> None:
    items = catalog()
    page, problems = open_page(
        browser, dev_server, f"{dev_server.base_url}/?lang=vi&department=marketing"
    )
    try:
        expect(page.locator("[data-kpi]:visible")).to_have_count(
            sum(1 for k in items if k.get("department") == "marketing"), timeout=15_000
        )
        page.emulate_media(media="print")
        expect(page.locator(".toolbar")).to_be_hidden()
        expect(page.locator(".topbar")).to_be_hidden()
        expect(page.locator(".print-header")).to_be_visible()
        expect(page.locator("#print-meta")).to_contain_text("Phòng ban: marketing")
        # Two cards a row, none cut across a page.
        columns = page.evaluate(
            "getComputedStyle(document.querySelector('.kpi-grid')).gridTemplateColumns"
        )
        assert len(columns.split()) == 2, columns
        breaks = page.locator(".kpi-card").first.evaluate("c => getComputedStyle(c).breakInside")
        assert breaks == "avoid"
        pdf = page.pdf(format="A4", print_background=True, prefer_css_page_size=True)
        assert pdf.startswith(b"%PDF")
        # Every page is A4: 595 x 842 points (210 x 297 mm).
        boxes = re.findall(rb"/MediaBox\s*\[\s*0 0 ([\d.]+) ([\d.]+)\s*\]", pdf)
        assert boxes, "no page in the PDF"
        for width, height in boxes:
            assert (round(float(width)), round(float(height))) == (595, 842), boxes
        (REPO / ".cache" / "screenshots").mkdir(parents=True, exist_ok=True)
        (REPO / ".cache" / "screenshots" / "scorecard-report.pdf").write_bytes(pdf)
        assert problems.clean, problems.summary()
    finally:
        page.context.close()


def test_vnd_reads_as_whole_dong_in_each_language(browser: Browser, dev_server: DevServer) -> None:
    """A KPI in VND: 1.234.567 ₫ in Vietnamese, ₫1,234,567 in English, never decimals."""
    key = f"doanh_thu_{uuid.uuid4().hex[:6]}"
    kpi = {
        "key": key, "name": "Doanh thu VND", "objective": "Tăng doanh thu",
        "perspective": "financial", "stage": "financial", "department": "finance",
        "owners": [{"name": "Thu Do", "email": "thu@example.com"}],
        "formula": {"sum": {"source": "support", "type": "invoice_paid", "field": "value"}},
        "window": "1d", "update_every": "1m", "review_period": "week", "unit": "VND",
        "direction": "higher_is_better", "minimum": 1_000_000, "target": 2_000_000,
        "weight": 1, "expires_on": "2030-12-31", "indicator": "lagging",
        "require_full_window": False, "data_collection": "Hóa đơn từ hệ thống kế toán",
        "tracking_cost": {"amount": 500_000, "currency": "VND", "per": "month"},
    }
    admin = {"Authorization": f"Bearer {dev_server.admin_token}"}
    page, problems = open_page(browser, dev_server, f"{dev_server.base_url}/?lang=vi")
    try:
        created = page.request.post(f"{dev_server.base_url}/v1/kpis", data=kpi, headers=admin)
        assert created.status == 201, created.text()
        dev_server.post_events("support", [{
            "event_id": str(uuid.uuid4()), "source": "support", "type": "invoice_paid",
            "value": 1234567.4,
            "occurred_at": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
        }])
        value = page.locator(f'[data-kpi="{key}"] .value')
        expect(value).to_have_text("1.234.567\xa0₫", timeout=60_000)
        expect(page.locator(f'[data-kpi="{key}"] .f-minimum')).to_have_text("1.000.000\xa0₫")
        page.locator(f'[data-kpi="{key}"] .kpi-link').click()
        expect(page.locator("#detail-body")).to_contain_text("500.000\xa0₫ / tháng", timeout=15_000)
        english, _ = open_page(browser, dev_server, f"{dev_server.base_url}/?lang=en")
        expect(english.locator(f'[data-kpi="{key}"] .value')).to_have_text(
            "₫1,234,567", timeout=15_000
        )
        english.context.close()
        assert problems.clean, problems.summary()
    finally:
        page.request.delete(f"{dev_server.base_url}/v1/kpis/{key}", headers=admin)
        page.context.close()
