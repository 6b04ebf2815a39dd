"""Every msgid the code shows to people, for the catalogs: ``python -m shared.i18n.extract``.

Prints a gettext template (.pot) on stdout; translators merge it into each ``.po`` (e.g.
``pybabel update -i kpipulse.pot -d shared/i18n/locales -D kpipulse``). The unit tests
use ``all_msgids`` to prove that every one of them has a Vietnamese translation.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Final

from babel.messages.catalog import Catalog
from babel.messages.extract import extract_python
from babel.messages.pofile import write_po

ROOT: Final = Path(__file__).resolve().parents[2]
# Modules whose strings reach people (emails, notifications, the page, CSV headers, digest).
PYTHON_SOURCES: Final = (
    "services/alerts/domain/render.py",
    "services/alerts/domain/payloads.py",
    "services/alerts/domain/digest.py",
    "services/scoring/domain/export.py",
    "shared/i18n/__init__.py",
)
PAGE_SCRIPT: Final = "services/scoring/web/app.js"
PAGE_SCRIPTS: Final = (PAGE_SCRIPT, "services/scoring/web/reported.js")
PAGE_HTML: Final = "services/scoring/web/index.html"
KEYWORDS: Final = {"gettext": None, "ngettext": (1, 2), "N_": None, "_": None}
# Catalog keywords the page shows through translatedKey() (values of KPI fields).
CATALOG_KEYWORDS: Final = (
    "attract", "engage", "create value", "retain", "financial",
    "day", "week", "month", "quarter", "year", "period",
    "leading", "lagging",
)
_JS_CALL: Final = re.compile(r"""\bt\(\s*"((?:[^"\\]|\\.)*)"\s*[,)]""")
_HTML_MARKER: Final = re.compile(r"\{\{_:(.+?)\}\}")


def python_msgids(paths: Iterable[str] = PYTHON_SOURCES) -> Iterator[str]:
    for name in paths:
        path = ROOT / name
        if not path.exists():
            continue
        with path.open("rb") as source:
            for _line, _func, message, _comments in extract_python(
                source, KEYWORDS, [], {}
            ):
                parts = message if isinstance(message, tuple | list) else (message,)
                yield from (str(part) for part in parts if part)


def page_msgids() -> Iterator[str]:
    script = "\n".join((ROOT / name).read_text(encoding="utf-8") for name in PAGE_SCRIPTS)
    for match in _JS_CALL.finditer(script):
        yield match.group(1).encode().decode("unicode_escape").encode("latin-1").decode()
    yield from _HTML_MARKER.findall((ROOT / PAGE_HTML).read_text(encoding="utf-8"))
    yield from CATALOG_KEYWORDS


def all_msgids() -> list[str]:
    return sorted(set(python_msgids()) | set(page_msgids()))


def main() -> None:
    catalog = Catalog(project="KPI Pulse", domain="kpipulse")
    for msgid in all_msgids():
        catalog.add(msgid)
    write_po(sys.stdout.buffer, catalog, omit_header=False, sort_output=True)


if __name__ == "__main__":
    main()
