"""Signature headers of webhook deliveries, as each provider computes them.

Shared by the fuzz tests and the hostile test, which sign deliveries with the stack's
secrets (and sign a different body when they want a bad signature).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from tests.e2e.conftest import WebhookSecrets

#: Providers whose deliveries carry a signature (Mailchimp's secret is in the URL).
SIGNED_WEBHOOKS = ("hubspot", "sendgrid", "zendesk", "standard")


def signed_headers(
    secrets: WebhookSecrets,
    provider: str,
    url: str,
    body: bytes,
    msg_id: str,
    *,
    now: int | None = None,
) -> dict[str, str]:
    """Valid signature headers for one delivery of ``body`` to ``url`` at ``now``."""
    now = int(time.time()) if now is None else now
    if provider == "standard":
        source = url.rstrip("/").rsplit("/", 1)[-1]
        key = base64.b64decode(secrets.standard_for(source).removeprefix("whsec_"))
        mac = hmac.new(key, f"{msg_id}.{now}.".encode() + body, hashlib.sha256).digest()
        return {
            "webhook-id": msg_id,
            "webhook-timestamp": str(now),
            "webhook-signature": "v1," + base64.b64encode(mac).decode(),
        }
    if provider == "hubspot":
        millis = str(now * 1000)
        message = b"POST" + url.encode() + body + millis.encode()
        mac = hmac.new(secrets.hubspot.encode(), message, hashlib.sha256).digest()
        return {
            "x-hubspot-request-timestamp": millis,
            "x-hubspot-signature-v3": base64.b64encode(mac).decode(),
        }
    if provider == "zendesk":
        stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now))
        mac = hmac.new(secrets.zendesk.encode(), stamp.encode() + body, hashlib.sha256).digest()
        return {
            "x-zendesk-webhook-signature-timestamp": stamp,
            "x-zendesk-webhook-signature": base64.b64encode(mac).decode(),
            "x-zendesk-webhook-invocation-id": msg_id,
        }
    assert provider == "sendgrid", provider
    signature = secrets.sendgrid_private.sign(str(now).encode() + body, ec.ECDSA(hashes.SHA256()))
    return {
        "x-twilio-email-event-webhook-timestamp": str(now),
        "x-twilio-email-event-webhook-signature": base64.b64encode(signature).decode(),
    }
