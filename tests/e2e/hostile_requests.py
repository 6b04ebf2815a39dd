"""Hostile requests to ingest — native batches and webhook deliveries — with the answer
each must get.

A ``Request`` is what is sent (path, headers, body) and its ``Answer``: the status, a
phrase the error message must contain, and, per event, its fate (``hostile_events``).
Requests refused as a whole publish nothing; their events must never be counted.
"""

from __future__ import annotations

import gzip
import time
import urllib.parse
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

import orjson
from cryptography.hazmat.primitives.asymmetric import ec

from tests.e2e.conftest import Stack
from tests.e2e.hostile_events import (
    ACCEPTED,
    TOO_LARGE_ALONE,
    Fate,
    Hostile,
    body_of,
    event_type,
    nested_raw,
    placeholder,
    refused,
)
from tests.e2e.signing import signed_headers


@dataclass(frozen=True)
class Answer:
    """The answer a request must get."""

    status: int
    says: str = ""  # the error message contains this (lower case)
    replayed: bool = False


@dataclass
class Request:
    label: str
    path: str
    headers: dict[str, str]
    body: bytes
    source: str  # the source its events are counted under
    events: list[Hostile]
    #: Set when the request as a whole must be refused; else derived from the events.
    refusal: Answer | None = None
    webhook: bool = False
    sent: int = 0  # times sent: a webhook delivery sent again is a replay

    def answer(self) -> Answer:
        if self.refusal is not None:
            return self.refusal
        if self.webhook and self.sent > 1:
            return Answer(200, "", replayed=True)
        if any(event.fate.accepted for event in self.events):
            return Answer(200)
        return Answer(422, "no valid event")

    def fates(self) -> list[Fate | None]:
        """Per event, what must become of it in this sending; None where the request
        never got to it (refused as a whole, or a replay): nothing published."""
        answer = self.answer()
        if answer.replayed or self.refusal is not None:
            return [None] * len(self.events)
        return [event.fate for event in self.events]


# --- the native API ------------------------------------------------------------------

ENCODINGS = ("identity", "gzip", "gzip_members", "gzip_trailing", "gzip_truncated")
SHAPES = ("batch", "array", "single")
#: Whole-request defects: a JSON text no encoder writes, added as one more element, and
#: what the request must then be answered.
WHOLE: dict[str, tuple[bytes, Answer] | None] = {
    "none": None,
    "wrong_key": None,
    "other_source": None,
    "nan_literal": (b'{"type": "x", "value": NaN}', Answer(400, "malformed json")),
    "overflow_literal": (b'{"type": "x", "value": 1e400}', Answer(400, "malformed json")),
    "lone_surrogate": (b'{"type": "x", "subject_id": "\\ud800"}', Answer(400, "malformed json")),
    "body_too_deep": (nested_raw(2000), Answer(422, "nested deeper than the limit")),
    "trailing_comma": (b"{},", Answer(400, "malformed json")),
}


def native_request(
    stack: Stack,
    *,
    source: str,
    events: list[Hostile],
    shape: str,
    encoding: str,
    whole: str,
) -> Request:
    """``events`` posted to /v1/events with ``source``'s key, shaped and encoded."""
    headers = {"Content-Type": "application/json", **stack.key_headers(source)}
    refusal: Answer | None = None
    documents: list[Any] = [event.fields for event in events]
    raw: list[Hostile] = list(events)
    if whole == "wrong_key":
        headers["Authorization"] = "Bearer kp_web_" + "0" * 40
    elif whole == "other_source":
        # One more event claiming another source than the key's: the request is refused.
        other = "crm" if source != "crm" else "support"
        documents.append({"source": other, "type": "x"})
        refusal = Answer(403, "source")
    elif WHOLE[whole] is not None:
        text, refusal = WHOLE[whole]  # type: ignore[misc]
        extra = Hostile({}, ACCEPTED, whole)
        documents.append(placeholder(text, extra.raw))
        raw.append(extra)
    if shape == "single" and len(documents) != 1:
        shape = "batch"
    document: Any = {"batch": documents} if shape == "batch" else documents
    if len(documents) == 1 and events[0].defect in TOO_LARGE_ALONE:
        # A request of one event is refused as a whole when that event is over the limit.
        refusal = refusal or Answer(413, "exceeds the limit")
    if shape == "single":
        document = documents[0]
        if document == []:  # a body that is an empty list: a batch of nothing
            refusal = refusal or Answer(422, "at least one event")
        elif not isinstance(document, dict):  # the body itself is no event
            refusal = refusal or Answer(422, "must be an event object")
    body = body_of(document, raw)
    body, headers, encoded_refusal = _encode(body, headers, encoding)
    return Request(
        label=f"native {shape} {encoding} {whole}: " + ", ".join(e.defect for e in events),
        path="/v1/events",
        headers=headers,
        body=body,
        source=source,
        events=events,
        # Ingest checks the key, then reads the body, parses it, then the sources.
        refusal=Answer(401, "key") if whole == "wrong_key" else encoded_refusal or refusal,
    )


def _encode(
    body: bytes, headers: dict[str, str], encoding: str
) -> tuple[bytes, dict[str, str], Answer | None]:
    if encoding == "identity":
        return body, headers, None
    headers = {**headers, "Content-Encoding": "gzip"}
    if encoding == "gzip_members":
        # Several members, split mid-document: every one must be read (RFC 1952).
        third = max(1, len(body) // 3)
        parts = (body[:third], body[third:2 * third], body[2 * third:])
        return b"".join(gzip.compress(part) for part in parts), headers, None
    whole = gzip.compress(body)
    if encoding == "gzip_trailing":
        return whole + b"garbage", headers, Answer(400, "after the gzip stream")
    if encoding == "gzip_truncated":
        return whole[:-6], headers, Answer(400, "gzip")
    return whole, headers, None


# --- webhook deliveries ----------------------------------------------------------------

PROVIDERS = ("hubspot", "sendgrid", "mailchimp", "zendesk", "standard")
SIGNING = ("valid", "valid", "valid", "tampered", "stale", "wrong_secret")
WEBHOOK_DEFECTS = ("none", "no_time", "far_future", "long_id")
PROVIDER_SOURCE = {"hubspot": "crm", "sendgrid": "email", "mailchimp": "email",
                   "zendesk": "support"}


@dataclass
class Item:
    """One event of a delivery in the provider's shape, and its fate."""

    fields: dict[str, Any] = field(default_factory=dict)
    fate: Fate = ACCEPTED
    needle: str = ""


def webhook_types(tag: str) -> dict[str, str]:
    """The event type each provider's mapping gives the test's deliveries."""
    kind = event_type(tag)
    return {"hubspot": f"hubspot_{kind}", "sendgrid": f"email_{kind}",
            "mailchimp": f"mailchimp_{kind}", "zendesk": f"zendesk_{kind}", "standard": kind}


def _item(provider: str, tag: str, number: int, defect: str, now: datetime) -> Item:
    own_id = f"{tag}-w{number}" if defect != "long_id" else f"{tag}-w{number}-" + "L" * 200
    fate = {"far_future": refused("occurred_at"), "long_id": refused("event_id")}.get(
        defect, ACCEPTED
    )
    when = now - timedelta(minutes=5) if defect != "far_future" else now + timedelta(days=3)
    kind = event_type(tag)
    fields: dict[str, Any]
    if provider == "hubspot":
        fields = {"eventId": own_id, "subscriptionType": kind, "objectId": number,
                  "occurredAt": int(when.timestamp() * 1000), "portalId": 1}
        time_key = "occurredAt"
    elif provider == "sendgrid":
        fields = {"sg_event_id": own_id, "event": kind, "email": f"{number}@example.com",
                  "timestamp": int(when.timestamp())}
        time_key = "timestamp"
    elif provider == "zendesk":
        fields = {"id": own_id, "type": f"zen:event-type:{kind}", "account_id": 1,
                  "time": when.isoformat(), "detail": {"requester_id": number}}
        time_key = "time"
    else:  # standard
        fields = {"type": kind, "timestamp": when.isoformat(), "data": {"marker": own_id},
                  "value": 2}
        time_key = "timestamp"
    if defect == "no_time":
        fields.pop(time_key)
    return Item(fields, fate, needle=f"{tag}-w{number}")


def webhook_request(
    stack: Stack,
    *,
    tag: str,
    provider: str,
    source: str,
    numbers: list[int],
    defects: list[str],
    signing: str,
    now: datetime,
) -> Request:
    """A delivery from ``provider`` (Standard Webhooks: for ``source``), signed as told."""
    if provider == "mailchimp":
        return _mailchimp(stack, tag, numbers[0], defects[0], signing, now)
    items = [_item(provider, tag, n, d, now) for n, d in zip(numbers, defects, strict=True)]
    msg_id = f"{tag}-d{numbers[0]}"
    if provider == "standard":
        path = f"/v1/webhooks/standard/{source}"
        if any(d == "long_id" for d in defects):
            msg_id += "-" + "L" * 200  # the delivery's id becomes its events' ids
            items = [replace(item, fate=refused("event_id")) for item in items]
    else:
        path = f"/v1/webhooks/{provider}"
        source = PROVIDER_SOURCE[provider]
    body = orjson.dumps([item.fields for item in items])
    headers = _signature(stack, provider, path, body, msg_id, signing)
    headers["Content-Type"] = "application/json"
    events = [Hostile(item.fields, item.fate, f"{provider}:{d}", needle=item.needle)
              for item, d in zip(items, defects, strict=True)]
    return Request(
        label=f"{provider}/{source} {signing}: " + ", ".join(defects),
        path=path,
        headers=headers,
        body=body,
        source=source,
        events=events,
        refusal=None if signing == "valid" else Answer(401, "refused"),
        webhook=True,
    )


def _signature(
    stack: Stack, provider: str, path: str, body: bytes, msg_id: str, signing: str
) -> dict[str, str]:
    """Signature headers for the delivery: valid, or wrong in the way ``signing`` says."""
    url, stamp, secrets = f"{stack.ingest}{path}", int(time.time()), stack.secrets
    if signing == "tampered":  # signed, then changed on the way
        return signed_headers(secrets, provider, url, body + b" ", msg_id, now=stamp)
    if signing == "stale":
        return signed_headers(secrets, provider, url, body, msg_id, now=stamp - 3600)
    if signing == "wrong_secret":
        if provider == "standard":  # another source's secret: each source has its own
            other = "web" if not path.endswith("/web") else "crm"
            return signed_headers(secrets, provider, url.rsplit("/", 1)[0] + "/" + other,
                                  body, msg_id, now=stamp)
        secrets = replace(secrets, hubspot="wrong", zendesk="wrong",
                          sendgrid_private=ec.generate_private_key(ec.SECP256R1()))
    return signed_headers(secrets, provider, url, body, msg_id, now=stamp)


def _mailchimp(
    stack: Stack, tag: str, number: int, defect: str, signing: str, now: datetime
) -> Request:
    when = now - timedelta(minutes=5) if defect != "far_future" else now + timedelta(days=3)
    form = {"type": event_type(tag), "data[email]": f"{number}@example.com",
            "data[id]": f"{tag}-m{number}", "fired_at": when.strftime("%Y-%m-%d %H:%M:%S")}
    if defect == "no_time":
        form.pop("fired_at")
    # Mailchimp's ids derive from the body's hash: never over-long.
    fate = refused("occurred_at") if defect == "far_future" else ACCEPTED
    secret = stack.secrets.mailchimp if signing == "valid" else stack.secrets.mailchimp + "x"
    return Request(
        label=f"mailchimp {signing}: {defect}",
        path=f"/v1/webhooks/mailchimp/{secret}",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
        body=urllib.parse.urlencode(form).encode(),
        source="email",
        events=[Hostile(form, fate, f"mailchimp:{defect}", needle=f"{tag}-m{number}")],
        refusal=None if signing == "valid" else Answer(401, "refused"),
        webhook=True,
    )
