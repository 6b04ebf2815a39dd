"""Webhook signature checks, one per provider, all pure and clock-injected.

Every verifier takes the list of currently valid secrets (two during a rotation),
compares in constant time and refuses timestamps outside the tolerance, so that a
captured request cannot be replayed later even with a valid signature.
"""

from __future__ import annotations

import base64
import binascii
import enum
import hashlib
import hmac
from collections.abc import Sequence
from datetime import datetime
from urllib.parse import unquote

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from services.ingest.domain.naming import parse_time


class Verdict(enum.Enum):
    OK = "ok"
    MISSING = "signature or timestamp header missing"
    INVALID = "signature does not match"
    STALE = "timestamp outside the allowed window"


def _hmac_b64(secret: bytes, message: bytes) -> bytes:
    return base64.b64encode(hmac.new(secret, message, hashlib.sha256).digest())


def _any_match(expected: Sequence[bytes], given: bytes) -> bool:
    # No early exit: every candidate is compared, each in constant time.
    matched = False
    for candidate in expected:
        matched |= hmac.compare_digest(candidate, given)
    return matched


def _fresh(when: datetime | None, now: datetime, tolerance_s: float) -> bool:
    return when is not None and abs((now - when).total_seconds()) <= tolerance_s


# HubSpot decodes these percent-escapes in the URI before signing (v3 docs).
_HUBSPOT_DECODE = ("%3A", "%2F", "%3F", "%40", "%21", "%24", "%27", "%28", "%29", "%2A",
                   "%2C", "%3B")


def hubspot_uri(uri: str) -> str:
    for escape in _HUBSPOT_DECODE:
        uri = uri.replace(escape, unquote(escape)).replace(escape.lower(), unquote(escape))
    return uri


def verify_hubspot_v3(
    *,
    secrets: Sequence[bytes],
    method: str,
    uri: str,
    body: bytes,
    timestamp: str | None,
    signature: str | None,
    now: datetime,
    tolerance_s: float,
) -> Verdict:
    """HMAC-SHA256, base64, over method + URI + body + timestamp (milliseconds)."""
    if not timestamp or not signature:
        return Verdict.MISSING
    message = method.upper().encode() + hubspot_uri(uri).encode() + body + timestamp.encode()
    expected = [_hmac_b64(secret, message) for secret in secrets]
    if not _any_match(expected, signature.strip().encode()):
        return Verdict.INVALID
    return Verdict.OK if _fresh(parse_time(timestamp), now, tolerance_s) else Verdict.STALE


def verify_zendesk(
    *,
    secrets: Sequence[bytes],
    body: bytes,
    timestamp: str | None,
    signature: str | None,
    now: datetime,
    tolerance_s: float,
) -> Verdict:
    """HMAC-SHA256, base64, over timestamp + body (Zendesk's signing secret)."""
    if not timestamp or not signature:
        return Verdict.MISSING
    expected = [_hmac_b64(secret, timestamp.encode() + body) for secret in secrets]
    if not _any_match(expected, signature.strip().encode()):
        return Verdict.INVALID
    return Verdict.OK if _fresh(parse_time(timestamp), now, tolerance_s) else Verdict.STALE


def standard_webhook_key(secret: str) -> bytes:
    """Standard Webhooks secrets are ``whsec_`` + base64 of the key bytes."""
    raw = secret.removeprefix("whsec_")
    try:
        return base64.b64decode(raw, validate=True)
    except (binascii.Error, ValueError):
        return raw.encode()  # a plain secret is accepted as its own bytes


def verify_standard(
    *,
    keys: Sequence[bytes],
    body: bytes,
    msg_id: str | None,
    timestamp: str | None,
    signature: str | None,
    now: datetime,
    tolerance_s: float,
) -> Verdict:
    """``v1,<base64 HMAC-SHA256 of id.timestamp.body>``, space-separated list (spec)."""
    if not msg_id or not timestamp or not signature:
        return Verdict.MISSING
    # ASCII digits only ("²".isdigit() is true but int() refuses it), at most 18 of them.
    if not (timestamp.isascii() and timestamp.isdigit()) or len(timestamp) > 18:
        return Verdict.STALE
    message = f"{msg_id}.{timestamp}.".encode() + body
    expected = [_hmac_b64(key, message) for key in keys]
    given = [
        part.split(",", 1)[1].encode()
        for part in signature.split()
        if part.startswith("v1,")
    ]
    if not any(_any_match(expected, sig) for sig in given):
        return Verdict.INVALID
    return Verdict.OK if _fresh(parse_time(int(timestamp)), now, tolerance_s) else Verdict.STALE


def load_sendgrid_key(text: str) -> ec.EllipticCurvePublicKey:
    """SendGrid shows the key as base64 DER; PEM is accepted too."""
    stripped = text.strip()
    if stripped.startswith("-----BEGIN"):
        key = serialization.load_pem_public_key(stripped.encode())
    else:
        key = serialization.load_der_public_key(base64.b64decode(stripped))
    if not isinstance(key, ec.EllipticCurvePublicKey):
        raise ValueError("a SendGrid verification key must be an EC (P-256) public key")
    return key


def verify_sendgrid(
    *,
    keys: Sequence[ec.EllipticCurvePublicKey],
    body: bytes,
    timestamp: str | None,
    signature: str | None,
    now: datetime,
    tolerance_s: float,
) -> Verdict:
    """ECDSA P-256 / SHA-256 over timestamp + body; the signature is base64 DER."""
    if not timestamp or not signature:
        return Verdict.MISSING
    try:
        der = base64.b64decode(signature.strip(), validate=True)
    except (binascii.Error, ValueError):
        return Verdict.INVALID
    payload = timestamp.encode() + body
    valid = False
    for key in keys:
        try:
            key.verify(der, payload, ec.ECDSA(hashes.SHA256()))
            valid = True
        except InvalidSignature:
            continue
    if not valid:
        return Verdict.INVALID
    return Verdict.OK if _fresh(parse_time(timestamp), now, tolerance_s) else Verdict.STALE


def verify_url_secret(*, secrets: Sequence[bytes], given: str) -> Verdict:
    """Mailchimp signs nothing: the secret path segment is the credential."""
    return Verdict.OK if _any_match(list(secrets), given.encode()) else Verdict.INVALID
