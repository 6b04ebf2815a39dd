"""Signed, expiring acknowledgement links for alert emails.

A link names one alert and the recipient it was sent to, and carries an HMAC over both
and its expiry: whoever holds it may acknowledge that alert, as that recipient, until it
expires. It works once: an acknowledged (or resolved) alert refuses it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

_MAC_BYTES: Final = 16
_CONTEXT: Final = b"kpipulse alert ack links v1"


class AckLinkError(ValueError):
    """The link is malformed, forged or expired (the message says which)."""


@dataclass(frozen=True, slots=True)
class AckClaim:
    alert_id: int
    email: str


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def link_key(secret: str) -> bytes:
    """The signing key, derived so that it differs from every other use of ``secret``."""
    return hmac.new(secret.encode(), _CONTEXT, hashlib.sha256).digest()


def sign(alert_id: int, email: str, expires: datetime, key: bytes) -> str:
    body = f"{alert_id}.{int(expires.timestamp())}.{_b64(email.encode())}"
    mac = hmac.new(key, body.encode(), hashlib.sha256).digest()[:_MAC_BYTES]
    return f"{body}.{_b64(mac)}"


def verify(token: str, key: bytes, now: datetime) -> AckClaim:
    parts = token.split(".")
    if len(parts) != 4 or not parts[0].isdigit() or not parts[1].isdigit():
        raise AckLinkError("malformed acknowledgement link")
    body = ".".join(parts[:3])
    expected = hmac.new(key, body.encode(), hashlib.sha256).digest()[:_MAC_BYTES]
    try:
        given = _unb64(parts[3])
        email = _unb64(parts[2]).decode()
    except (ValueError, UnicodeDecodeError):
        raise AckLinkError("malformed acknowledgement link") from None
    if not hmac.compare_digest(given, expected):
        raise AckLinkError("acknowledgement link not valid (altered or from another server)")
    if int(parts[1]) < now.timestamp():
        raise AckLinkError("acknowledgement link expired: acknowledge from the scorecard page")
    return AckClaim(int(parts[0]), email)


def with_ack_link(payload: dict[str, Any], url: str) -> dict[str, Any]:
    """An email payload with the link added to its text and HTML parts."""
    text = f"{payload['text'].rstrip()}\n\nAcknowledge (stops repeats): {url}\n"
    href = url.replace("&", "&amp;").replace('"', "&quot;").replace("<", "&lt;")
    html = f'{payload["html"]}<p><a href="{href}">Acknowledge this alert</a></p>'
    return {**payload, "text": text, "html": html}
