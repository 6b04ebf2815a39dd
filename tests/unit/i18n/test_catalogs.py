"""Every string people read has a Vietnamese translation, and Vietnamese output has no
English left in it; numbers, currencies and dates follow the locale (Babel, CLDR)."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime

from services.alerts.domain.conditions import Condition
from services.alerts.domain.facts import AlertFacts, TrendPoint
from services.alerts.domain.payloads import slack_body
from services.alerts.domain.render import render_email
from services.scoring.api.page import render_index
from shared.i18n import LocalePolicy, messages, normalize, translator
from shared.i18n.extract import PAGE_SCRIPTS, ROOT, all_msgids

# The same word in both languages: loanwords and the product's own name.
SAME_IN_BOTH = {"KPI", "{n} {period}"}


def english_leftovers(text: str) -> list[str]:
    """Catalog msgids (English) that appear as whole words in a text."""
    vi = messages("vi")
    found = []
    for msgid in all_msgids():
        if msgid in SAME_IN_BOTH or vi.get(msgid) == msgid or "{" in msgid:
            continue
        if re.search(rf"(?<![\w\[]){re.escape(msgid)}(?![\w\]])", text):
            found.append(msgid)
    # Placeholders' fixed parts, e.g. "is back to normal (" of a formatted message.
    for msgid in all_msgids():
        for piece in re.split(r"\{\w+\}", msgid):
            part = piece.strip(" ().:·")
            if "{" in msgid and len(part) > 6 and re.search(rf"\b{re.escape(part)}\b", text):
                found.append(part)
    return found


def test_every_msgid_has_a_vietnamese_translation() -> None:
    vi = messages("vi")
    missing = [msgid for msgid in all_msgids() if not vi.get(msgid)]
    assert missing == []
    untranslated = [m for m in all_msgids() if vi[m] == m and m not in SAME_IN_BOTH]
    assert untranslated == []


def test_placeholders_survive_translation() -> None:
    vi = messages("vi")
    for msgid, text in vi.items():
        assert set(re.findall(r"\{\w+\}", msgid)) == set(re.findall(r"\{\w+\}", text)), msgid


def facts(kind: str = "firing", **changes: object) -> AlertFacts:
    t0 = datetime(2026, 3, 10, 12, tzinfo=UTC)
    base: dict[str, object] = {
        "alert_id": 7,
        "dedupe_key": "doanh_thu:below_minimum:2026-03-10T12:00:00+00:00",
        "kpi_key": "doanh_thu",
        "kpi_name": "Doanh thu tháng",
        "condition": Condition.BELOW_MINIMUM,
        "severity": "critical",
        "kind": kind,
        "value": 1234567.0,
        "minimum": 2000000.0,
        "target": 3500000.5,
        "direction": "higher_is_better",
        "started_at": t0,
        "ended_at": t0 if kind == "resolved" else None,
        "scorecard_url": "http://kpi.example/",
        "owners": ("Lan",),
        "trend": (TrendPoint(t0, 2100000.0), TrendPoint(t0, 1234567.0)),
        "expires_on": date(2027, 3, 31),
        "last_value_at": t0,
        "leading_in_breach": ("khach_tiem_nang",),
    }
    base.update(changes)
    return AlertFacts(**base)  # type: ignore[arg-type]


def test_vietnamese_emails_have_no_english_leftovers() -> None:
    tr = translator("vi", "Asia/Ho_Chi_Minh")
    for kind in ("firing", "repeat", "resolved"):
        for condition in Condition:
            email = render_email(facts(kind, condition=condition), tr)
            for text in (email.subject, email.text, email.html):
                assert english_leftovers(text) == [], (kind, condition, text)
    email = render_email(facts(), tr)
    assert email.subject.startswith("[ĐANG BÁO] Doanh thu tháng kém hơn mức tối thiểu")
    # Vietnamese grouping; the time in the company's zone (12:00 UTC is 19:00 in Hanoi).
    assert "1.234.567" in email.text and "19:00:00" in email.text
    assert "<html lang='vi'>" in email.html
    slack = slack_body(facts(), tr)
    assert english_leftovers(str(slack)) == []


def test_english_stays_the_default() -> None:
    email = render_email(facts())
    assert email.subject == "[FIRING] Doanh thu tháng is worse than its minimum"
    assert "1,234,567" in email.text


def test_vietnamese_page_template_has_no_english_leftovers() -> None:
    page = render_index("", tr=translator("vi"))
    visible = re.sub(r"<script.*?</script>|<[^>]+>", " ", page, flags=re.S)
    assert english_leftovers(visible.replace("KPI Pulse", "")) == []
    assert '<html lang="vi">' in page and "{{_:" not in page
    assert "Thẻ điểm cân bằng" in page
    english = render_index("", tr=translator("en"))
    assert "Balanced scorecard" in english and '<html lang="en">' in english


def test_formats_follow_the_locale() -> None:
    vi = translator("vi")
    assert vi.currency(1234567, "VND") == "1.234.567\xa0₫"
    assert vi.currency(1234567.4, "VND") == "1.234.567\xa0₫"  # VND has no decimals
    assert translator("en").currency(1234567, "VND") == "₫1,234,567"
    assert vi.number(0.5) == "0,5"
    assert vi.date(date(2027, 3, 31)) == "31 thg 3, 2027"


def test_locale_policy_prefers_the_person_then_the_company() -> None:
    assert normalize("vi-VN") == "vi" and normalize("fr") is None
    policy = LocalePolicy("vi", preference=lambda who: "en" if who == "an@x" else None)
    assert policy.for_person("lan@x").locale == "vi"
    assert policy.for_person("an@x").locale == "en"
    assert policy.for_request("en", "lan@x").locale == "en"
    assert policy.for_request("xx", "an@x").locale == "en"


def test_page_translates_literals_only() -> None:
    """Every t() call in app.js names its msgid literally, so the catalog check sees it;
    the one exception translates catalog keywords, listed in CATALOG_KEYWORDS."""
    script = "\n".join((ROOT / name).read_text(encoding="utf-8") for name in PAGE_SCRIPTS)
    calls = re.findall(r"(?<!function )\bt\((?!\s*\")([^)]*)", script)
    assert calls == ["humanize(key"]
