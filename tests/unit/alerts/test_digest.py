"""The weekly digest's week, readers and content, in English and Vietnamese."""

from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

from services.alerts.domain.digest import (
    Breach,
    Digest,
    DigestKpi,
    DigestOwner,
    digests_for,
    due_period,
    render_payload,
    sections,
)
from services.alerts.domain.routing import Route
from shared.i18n import translator
from tests.unit.i18n.test_catalogs import english_leftovers

HANOI = ZoneInfo("Asia/Ho_Chi_Minh")
LAN = DigestOwner("Lan", "lan@example.com")
MINH = DigestOwner("Minh", "minh@example.com", slack_webhook_url="https://hooks.example/minh")


def test_the_week_runs_monday_to_monday_in_the_company_zone() -> None:
    # Monday 7 December 2026, 07:30 in Hanoi: this week's digest is not due before 08:00.
    early = due_period(datetime(2026, 12, 7, 0, 30, tzinfo=UTC), HANOI, send_hour=8)
    assert early.start == date(2026, 11, 23)
    due = due_period(datetime(2026, 12, 7, 1, 30, tzinfo=UTC), HANOI, send_hour=8)
    assert due.start == date(2026, 11, 30) and due.last_day == date(2026, 12, 6)
    # Local midnight, not UTC's: Monday 00:00 in Hanoi is Sunday 17:00 UTC.
    assert due.start_at.astimezone(UTC) == datetime(2026, 11, 29, 17, tzinfo=UTC)
    later = due_period(datetime(2026, 12, 10, 12, tzinfo=UTC), HANOI, send_hour=8)
    assert later == due


def kpis() -> list[DigestKpi]:
    return [
        DigestKpi("revenue", "Doanh thu", "finance", "VND", 1234567.0, "breach", 0.0,
                  date(2026, 12, 20), (LAN,)),
        DigestKpi("cac", "Chi phí CAC", "finance", "VND", 90000.0, "on_target", 100.0,
                  date(2027, 6, 30), (LAN, MINH)),
        DigestKpi("leads", "Khách tiềm năng", "marketing", "leads", 40.0, "below_target", 50.0,
                  None, (MINH,)),
    ]


def build_all() -> list[Digest]:
    period = due_period(datetime(2026, 12, 7, 1, 30, tzinfo=UTC), HANOI, send_hour=8)
    breach = Breach("revenue", datetime(2026, 12, 2, 3, tzinfo=UTC), None)
    old = Breach("gone", datetime(2026, 12, 1, tzinfo=UTC), None)  # a KPI no longer known
    return digests_for(
        period,
        kpis(),
        breaches=[breach, old],
        before={"revenue": 2000000.0, "cac": 90000.0, "leads": 20.0},
        expiry_warning_days=14,
        department_emails={"finance": ["cfo@example.com"]},
        default_email="ops@example.com",
    )


def test_one_digest_per_department_and_per_owner_on_their_routes() -> None:
    digests = {(d.scope, d.scope_id): d for d in build_all()}
    assert set(digests) == {
        ("department", "finance"),
        ("department", "marketing"),
        ("owner", "lan@example.com"),
        ("owner", "minh@example.com"),
    }
    assert digests["department", "finance"].routes == (Route("email", "cfo@example.com"),)
    # A department without readers of its own goes to the default address.
    assert digests["department", "marketing"].routes == (Route("email", "ops@example.com"),)
    assert set(digests["owner", "minh@example.com"].routes) == {
        Route("email", "minh@example.com"),
        Route("slack", "https://hooks.example/minh"),
    }
    lan = digests["owner", "lan@example.com"]
    assert [k.key for k in lan.kpis] == ["revenue", "cac"]  # worst score first
    assert [k.key for k, _ in lan.breaches] == ["revenue"]
    assert [k.key for k in lan.expiring] == ["revenue"]  # within the warning days
    assert [m.kpi.key for m in lan.moved] == ["revenue"]  # cac did not move


def test_vietnamese_digest_reads_in_vietnamese() -> None:
    tr = translator("vi", "Asia/Ho_Chi_Minh")
    finance = next(d for d in build_all() if d.scope_id == "finance")
    email = render_payload(finance, Route("email", "cfo@example.com"), tr, "http://kpi.example/")
    assert email["subject"].startswith("[KPI Pulse] Bản tin tuần: finance, từ 30 thg 11, 2026")
    text = email["text"]
    assert "Doanh thu: 1.234.567\xa0₫ · Vi phạm · điểm 0" in text
    assert "Doanh thu: 2.000.000\xa0₫ → 1.234.567\xa0₫ (-38,27 %)" in text
    assert "dưới mức tối thiểu từ" in text and "hết hạn vào 20 thg 12, 2026" in text
    for part in (email["subject"], text, email["html"]):
        assert english_leftovers(part.replace("KPI Pulse", "")) == [], part
    slack = render_payload(finance, Route("slack", "https://h.example/x"), tr, "http://k/")
    assert english_leftovers(str(slack).replace("KPI Pulse", "")) == []


def test_empty_sections_say_so() -> None:
    tr = translator("en")
    marketing = next(d for d in build_all() if d.scope_id == "marketing")
    heads = dict(sections(marketing, tr))
    assert heads["Breaches"] == ["No breach this week."]
    assert heads["Expiring soon"] == ["Nothing expires soon."]
    assert heads["What moved most"] == ["Khách tiềm năng: 20 leads → 40 leads (+100 %)"]
    webhook = render_payload(marketing, Route("webhook", "https://h.example/"), tr, "http://k/")
    assert webhook["body"]["kind"] == "digest" and webhook["body"]["scope_id"] == "marketing"
