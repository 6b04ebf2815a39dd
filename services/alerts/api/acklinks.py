"""``/v1/ack/{token}``: acknowledge an alert from the link in its email.

GET shows a confirmation form and changes nothing (mail scanners fetch links); POST
acknowledges, recording the recipient the link was made for.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from html import escape
from typing import Final
from urllib.parse import parse_qs

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.alerts.domain.acklinks import AckClaim, AckLinkError, verify
from services.alerts.domain.lifecycle import State
from services.alerts.repository import AlertRepository
from shared.db.engine import transaction

_HEADERS: Final = {
    "Content-Security-Policy": "default-src 'none'; form-action 'self'; frame-ancestors 'none'",
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
}


def _page(title: str, body: str, status: int = 200) -> HTMLResponse:
    html = (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
        f"<title>{escape(title)}</title></head><body><h1>{escape(title)}</h1>{body}</body></html>"
    )
    return HTMLResponse(html, status_code=status, headers=_HEADERS)


def ack_link_router(
    key: bytes, sessions: async_sessionmaker[AsyncSession], clock: Callable[[], datetime]
) -> APIRouter:
    router = APIRouter(prefix="/v1/ack", tags=["alerts"], include_in_schema=False)
    alerts = AlertRepository()

    def claim(token: str) -> AckClaim | HTMLResponse:
        try:
            return verify(token, key, clock())
        except AckLinkError as exc:
            return _page("Link refused", f"<p>{escape(str(exc))}</p>", 403)

    @router.get("/{token}")
    async def confirm(token: str) -> HTMLResponse:
        found = claim(token)
        if isinstance(found, HTMLResponse):
            return found
        return _page(
            f"Acknowledge alert {found.alert_id}",
            f"<p>As {escape(found.email)}.</p><form method='post'>"
            "<label>Note <input name='note' maxlength='2000'></label> "
            "<button type='submit'>Acknowledge</button></form>",
        )

    @router.post("/{token}")
    async def acknowledge(token: str, request: Request) -> HTMLResponse:
        found = claim(token)
        if isinstance(found, HTMLResponse):
            return found
        form = parse_qs((await request.body()).decode("utf-8", errors="replace"))
        note = (form.get("note") or [""])[0].replace("\x00", "")[:2000]
        async with transaction(sessions) as session:
            alert = await alerts.get(session, found.alert_id)
            if alert is None:
                return _page("Unknown alert", "<p>This alert no longer exists.</p>", 404)
            if alert.state is State.RESOLVED or alert.acked_at is not None:
                who = f" by {escape(alert.acked_by)}" if alert.acked_by else ""
                state = "resolved" if alert.acked_at is None else f"acknowledged{who}"
                return _page("Nothing to do", f"<p>The alert is already {state}.</p>", 409)
            await alerts.ack(session, alert.id, note=note, now=clock(), actor=found.email)
        return _page("Acknowledged", f"<p>Alert {alert.id} acknowledged. Repeats stop.</p>")

    return router
