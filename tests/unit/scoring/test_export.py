"""CSV exports: the view's filter, the reader's language, machine-readable numbers."""

from __future__ import annotations

import csv
import io
from typing import Any

from services.scoring.domain.export import (
    BOM,
    content_disposition,
    filename,
    history_csv,
    kpis_csv,
    matches,
)
from shared.i18n import translator


def view(**changes: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "key": "revenue",
        "name": "Doanh thu, tháng",
        "perspective": "financial",
        "department": "finance",
        "owners": [{"name": "Thu Do", "email": "thu@example.com"}],
        "unit": "VND",
        "value": 1234567.5,
        "status": "below_target",
        "score": 42.0,
        "minimum": 1000000,
        "target": 2000000,
        "weight": 3,
        "as_of": "2026-12-07T10:00:00+00:00",
        "coverage": 1.0,
        "expires_on": "2027-03-31",
    }
    base.update(changes)
    return base


def rows(text: str) -> list[list[str]]:
    assert text.startswith(BOM)
    return list(csv.reader(io.StringIO(text[len(BOM):])))


def test_filter_by_department_and_owner() -> None:
    kpi = view()
    assert matches(kpi, department=None, owner=None)
    assert matches(kpi, department="finance", owner="THU@example.com")
    assert matches(kpi, department=None, owner="thu do")
    assert not matches(kpi, department="sales", owner=None)
    assert not matches(kpi, department=None, owner="lan@example.com")
    assert not matches(view(owners=[]), department=None, owner="thu@example.com")


def test_kpis_csv_in_vietnamese_keeps_numbers_machine_readable() -> None:
    views = [view(), view(key="churn", value=None, status="no_data")]
    table = rows(kpis_csv(views, translator("vi")))
    assert table[0][:4] == ["Mã", "Tên", "Khía cạnh", "Phòng ban"]
    first = dict(zip(table[0], table[1], strict=True))
    assert first["Tên"] == "Doanh thu, tháng"  # quoted, the comma survives
    assert first["Giá trị"] == "1234567.5"
    assert first["Trạng thái"] == "Dưới mục tiêu"
    assert first["Người phụ trách"] == "Thu Do"
    second = dict(zip(table[0], table[2], strict=True))
    assert second["Giá trị"] == "" and second["Trạng thái"] == "Chưa có dữ liệu"


def test_history_csv_in_english() -> None:
    points: list[dict[str, Any]] = [
        {"at": "2026-12-01T00:00:00+00:00", "value": 0.125, "status": "on_target"},
        {"at": "2026-12-02T00:00:00+00:00", "value": None, "status": "no_data"},
    ]
    table = rows(history_csv(points, translator("en")))
    assert table == [
        ["Time", "Value", "Status"],
        ["2026-12-01T00:00:00+00:00", "0.125", "On target"],
        ["2026-12-02T00:00:00+00:00", "", "No data"],
    ]


def test_download_names_are_header_safe() -> None:
    assert filename('kpis-sales-"lan"@x;y') == "kpis-sales-_lan__x_y.csv"
    header = content_disposition("kpis-kinh-doanh-Hà Nội")
    header.encode("latin-1")  # a header value must be Latin-1; this one is ASCII
    assert 'filename="kpis-kinh-doanh-H__N_i.csv"' in header
    assert "filename*=UTF-8''kpis-kinh-doanh-H%C3%A0%20N%E1%BB%99i.csv" in header
