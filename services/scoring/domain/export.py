"""CSV exports of KPI values and history, and the department / owner filter they share.

Headers and statuses are in the reader's language; numbers and times stay machine-readable
(a dot decimal, ISO 8601 in UTC) so that any spreadsheet, in any locale, imports them as
numbers and dates rather than text. The UTF-8 byte-order mark makes Excel read Vietnamese
correctly.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Final
from urllib.parse import quote

from shared.i18n import N_, Translator

BOM: Final = "\ufeff"
STATUS_LABELS: Final = {
    "breach": N_("Breach"),
    "below_target": N_("Below target"),
    "on_target": N_("On target"),
    "no_data": N_("No data"),
}
KPI_COLUMNS: Final = (
    ("key", N_("Key")),
    ("name", N_("Name")),
    ("perspective", N_("Perspective")),
    ("department", N_("Department")),
    ("owners", N_("Owners")),
    ("unit", N_("Unit")),
    ("value", N_("Value")),
    ("status", N_("Status")),
    ("score", N_("Score")),
    ("minimum", N_("Minimum")),
    ("target", N_("Target")),
    ("weight", N_("Weight")),
    ("as_of", N_("As of")),
    ("coverage", N_("Coverage")),
    ("expires_on", N_("Expires on")),
)
HISTORY_COLUMNS: Final = (
    ("at", N_("Time")),
    ("value", N_("Value")),
    ("status", N_("Status")),
)


def owner_names(view: Mapping[str, Any]) -> list[str]:
    return [str(o.get("name") or o.get("email") or "") for o in view.get("owners") or []]


def matches(view: Mapping[str, Any], *, department: str | None, owner: str | None) -> bool:
    """The page's and the exports' filter: one department, or one owner by name or email."""
    if department and str(view.get("department") or "") != department:
        return False
    if owner:
        wanted = owner.strip().casefold()
        people = view.get("owners") or []
        if not any(
            wanted in (str(o.get("name") or "").casefold(), str(o.get("email") or "").casefold())
            for o in people
        ):
            return False
    return True


def _number(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int | float):
        return format(value, ".12g")
    return str(value)


def _write(header: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(header)
    writer.writerows(rows)
    return BOM + out.getvalue()


def _cell(view: Mapping[str, Any], column: str, tr: Translator) -> str:
    if column == "owners":
        return ", ".join(owner_names(view))
    if column == "status":
        status = str(view.get("status") or "no_data")
        return tr.gettext(STATUS_LABELS.get(status, status))
    if column == "perspective":
        return str(view.get("perspective") or "")
    return _number(view.get(column))


def kpis_csv(views: Iterable[Mapping[str, Any]], tr: Translator) -> str:
    rows = ([_cell(view, column, tr) for column, _label in KPI_COLUMNS] for view in views)
    return _write([tr.gettext(label) for _column, label in KPI_COLUMNS], rows)


def history_csv(points: Iterable[Mapping[str, Any]], tr: Translator) -> str:
    rows = (
        [
            str(point.get("at") or ""),
            _number(point.get("value")),
            tr.gettext(STATUS_LABELS.get(str(point.get("status")), str(point.get("status")))),
        ]
        for point in points
    )
    return _write([tr.gettext(label) for _column, label in HISTORY_COLUMNS], rows)


def filename(stem: str) -> str:
    """An ASCII download name, safe as a header value (headers are Latin-1 at most)."""
    safe = "".join(ch if ch.isascii() and (ch.isalnum() or ch in "-_.") else "_" for ch in stem)
    return f"{safe[:120] or 'kpis'}.csv"


def content_disposition(stem: str) -> str:
    """``attachment`` with the ASCII name, and the exact one in UTF-8 (RFC 6266 / 5987)."""
    exact = quote(f"{stem[:120]}.csv", safe="")
    return f"attachment; filename=\"{filename(stem)}\"; filename*=UTF-8''{exact}"
