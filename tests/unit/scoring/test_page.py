"""The scorecard page is told the company's time zone: it shows its calendar."""

from __future__ import annotations

from services.scoring.api.page import render_index


def test_page_carries_the_company_time_zone() -> None:
    page = render_index("http://alerts.example", "Asia/Ho_Chi_Minh")
    assert '<meta name="kpipulse-time-zone" content="Asia/Ho_Chi_Minh">' in page
    assert "{{" not in page
