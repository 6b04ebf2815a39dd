"""The scorecard page: one HTML document plus static assets, no build step.

The page is plain HTML/CSS/JS that reads the JSON APIs of scoring (same origin) and of
alerts (``alerts_api``; empty means the same origin, as in the single-process dev mode).
The alerts base URL reaches the browser through a ``<meta>`` tag filled in here, so the
static files never need to be rebuilt per deployment. Asset URLs carry a content hash,
so the HTML can be ``no-cache`` while the assets stay cacheable and never go stale.
"""

from __future__ import annotations

import hashlib
import html
from pathlib import Path
from typing import Final
from urllib.parse import urlsplit

from fastapi import APIRouter, FastAPI
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

WEB_DIR: Final = Path(__file__).resolve().parent.parent / "web"
STATIC_PREFIX: Final = "/static"
_HASHED_ASSETS: Final = ("app.js", "style.css")


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


def render_index(alerts_api: str, time_zone: str = "UTC") -> str:
    """index.html with the alerts base URL, the company's time zone (the page shows
    times and dates on the company's calendar, not the browser's) and the asset version."""
    template = (WEB_DIR / "index.html").read_text(encoding="utf-8")
    return (
        template.replace("{{ALERTS_API}}", html.escape(alerts_api.rstrip("/"), quote=True))
        .replace("{{TIME_ZONE}}", html.escape(time_zone, quote=True))
        .replace("{{VERSION}}", _asset_version())
    )


def page_router(alerts_api: str, time_zone: str = "UTC") -> APIRouter:
    """``GET /``: the scorecard page (rendered once; the assets do not change at runtime)."""
    router = APIRouter(tags=["page"])
    body = render_index(alerts_api, time_zone)
    headers = {
        "Cache-Control": "no-cache",
        "Content-Security-Policy": content_security_policy(alerts_api),
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "same-origin",
    }

    @router.get("/", response_class=HTMLResponse, include_in_schema=False)
    async def scorecard_page() -> HTMLResponse:
        return HTMLResponse(body, headers=headers)

    return router


def mount_page(app: FastAPI, *, alerts_api: str, time_zone: str = "UTC") -> None:
    """Serve the page at ``/`` and its assets under ``/static``."""
    app.include_router(page_router(alerts_api, time_zone))
    app.mount(STATIC_PREFIX, StaticFiles(directory=WEB_DIR), name="static")
