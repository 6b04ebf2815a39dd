"""The scorecard page: one HTML document plus static assets, no build step.

The page is plain HTML/CSS/JS that reads the JSON APIs of scoring (same origin) and of
alerts (``alerts_api``; empty means the same origin, as in the single-process dev mode).
The alerts base URL reaches the browser through a ``<meta>`` tag filled in here, so the
static files never need to be rebuilt per deployment. Asset URLs carry a content hash,
so the HTML can be ``no-cache`` while the assets stay cacheable and never go stale.

The page speaks the reader's language: ``{{_:English text}}`` markers in index.html are
translated here, and app.js reads its own strings from the catalog embedded as JSON (not
executed, so the CSP's ``script-src 'self'`` holds). ``?lang=vi`` chooses explicitly;
otherwise the person's own choice (the hook in ``LocalePolicy``), else the company's.
"""

from __future__ import annotations

import hashlib
import html
import json
import re
from pathlib import Path
from typing import Final
from urllib.parse import urlsplit

from fastapi import APIRouter, FastAPI, Query
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

from shared.i18n import SUPPORTED, LocalePolicy, Translator, messages

WEB_DIR: Final = Path(__file__).resolve().parent.parent / "web"
STATIC_PREFIX: Final = "/static"
_HASHED_ASSETS: Final = ("app.js", "reported.js", "style.css")
MARKER: Final = re.compile(r"\{\{_:(.+?)\}\}")


def _asset_version() -> str:
    """A short hash of the page's own assets: changes whenever one of them changes."""
    digest = hashlib.sha256()
    for name in _HASHED_ASSETS:
        digest.update((WEB_DIR / name).read_bytes())
    return digest.hexdigest()[:12]


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}" if parts.scheme and parts.netloc else ""


def content_security_policy(alerts_api: str) -> str:
    """Everything comes from this origin; the alerts API may live on another one."""
    connect = " ".join(filter(None, ("'self'", _origin(alerts_api))))
    return (
        "default-src 'self'; "
        f"connect-src {connect}; "
        "img-src 'self' data:; "
        # uPlot positions its legend and cursor through element styles.
        "style-src 'self' 'unsafe-inline'; "
        "script-src 'self'; "
        "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    )


def _page_catalog(tr: Translator) -> str:
    """The locale and its messages as JSON that is safe inside a <script> element."""
    data = json.dumps({"locale": tr.locale, "messages": messages(tr.locale)}, ensure_ascii=False)
    return data.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def render_index(alerts_api: str, time_zone: str = "UTC", tr: Translator | None = None) -> str:
    """index.html in the reader's language, with the alerts base URL, the company's time
    zone (the page shows times and dates on the company's calendar, not the browser's) and
    the asset version."""
    tr = tr or LocalePolicy().for_person(None)
    template = (WEB_DIR / "index.html").read_text(encoding="utf-8")
    translated = MARKER.sub(lambda m: html.escape(tr.gettext(m.group(1)), quote=True), template)
    return (
        translated.replace("{{ALERTS_API}}", html.escape(alerts_api.rstrip("/"), quote=True))
        .replace("{{TIME_ZONE}}", html.escape(time_zone, quote=True))
        .replace("{{VERSION}}", _asset_version())
        .replace("{{LANG}}", tr.locale)
        .replace("{{I18N}}", _page_catalog(tr))
    )


def page_router(
    alerts_api: str, time_zone: str = "UTC", locales: LocalePolicy | None = None
) -> APIRouter:
    """``GET /``: the scorecard page, rendered once per language (assets never change)."""
    router = APIRouter(tags=["page"])
    policy = locales or LocalePolicy(time_zone=time_zone)
    bodies = {
        code: render_index(alerts_api, time_zone, policy.for_request(code)) for code in SUPPORTED
    }
    headers = {
        "Cache-Control": "no-cache",
        "Content-Security-Policy": content_security_policy(alerts_api),
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "same-origin",
    }

    @router.get("/", response_class=HTMLResponse, include_in_schema=False)
    async def scorecard_page(lang: str | None = Query(default=None)) -> HTMLResponse:
        # Signed-in users' own language plugs in here (person=...) once users exist.
        tr = policy.for_request(lang)
        return HTMLResponse(bodies[tr.locale], headers={**headers, "Content-Language": tr.locale})

    return router


def mount_page(
    app: FastAPI,
    *,
    alerts_api: str,
    time_zone: str = "UTC",
    locales: LocalePolicy | None = None,
) -> None:
    """Serve the page at ``/`` and its assets under ``/static``."""
    app.include_router(page_router(alerts_api, time_zone, locales))
    app.mount(STATIC_PREFIX, StaticFiles(directory=WEB_DIR), name="static")
