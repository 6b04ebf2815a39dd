"""Provider webhook payloads → canonical envelope fields.

Event ids are derived from the provider's own ids (or the delivery id and position),
so a provider's retry of the same event carries the same ``event_id`` and scoring
counts it once even when it was delivered under a fresh delivery id. An id longer than
the envelope allows is refused by validation (422), never cut.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from services.ingest.domain.envelopes import SchemaError
from services.ingest.domain.naming import as_number, parse_time, snake_case

Fields = dict[str, Any]

_HUBSPOT_TYPES = {
    "contact.creation": "lead_created",
    "company.creation": "company_created",
    "deal.creation": "deal_created",
    "deal.deletion": "deal_deleted",
    "ticket.creation": "ticket_opened",
}
_HUBSPOT_STAGES = {"closedwon": "deal_won", "closedlost": "deal_lost"}

_SENDGRID_TYPES = {
    "processed": "email_sent",
    "delivered": "email_delivered",
    "open": "email_opened",
    "click": "email_clicked",
    "bounce": "email_bounced",
    "dropped": "email_dropped",
    "deferred": "email_deferred",
    "unsubscribe": "email_unsubscribed",
    "group_unsubscribe": "email_unsubscribed",
    "spamreport": "email_spam_reported",
}

_MAILCHIMP_TYPES = {
    "subscribe": "list_subscribed",
    "unsubscribe": "list_unsubscribed",
    "profile": "profile_updated",
    "upemail": "email_changed",
    "cleaned": "email_cleaned",
    "campaign": "campaign_sent",
}

_ZENDESK_TYPES = {
    "ticket.created": "ticket_opened",
    "ticket.comment_added": "ticket_commented",
    "ticket.agent_assignment_changed": "ticket_assigned",
    "ticket.priority_changed": "ticket_priority_changed",
}
_ZENDESK_STATUSES = {
    "solved": "ticket_resolved",
    "closed": "ticket_closed",
    "open": "ticket_reopened",
}


def _envelope(
    *,
    event_id: str,
    source: str,
    event_type: str,
    occurred_at: datetime | None,
    received_at: datetime,
    subject: object = None,
    value: float | None = None,
    properties: Fields | None = None,
    context: Fields | None = None,
) -> Fields:
    return {
        # Never cut to the envelope's limit: two ids sharing a prefix would become one
        # event and the second dropped as a duplicate; an over-long id is refused.
        "event_id": event_id,
        "source": source,
        "type": event_type,
        "occurred_at": occurred_at or received_at,
        "received_at": received_at,
        "subject_id": None if subject is None else str(subject)[:256],
        "value": value,
        "properties": properties or {},
        "context": context or {},
    }


def _objects(payload: object, what: str) -> list[Fields]:
    items = payload if isinstance(payload, list) else [payload]
    if not all(isinstance(item, dict) for item in items):
        raise SchemaError(f"body: {what} must be an object or a list of objects")
    return items  # type: ignore[return-value]


def map_hubspot(payload: object, *, received_at: datetime) -> list[Fields]:
    events = []
    for item in _objects(payload, "HubSpot events"):
        kind = str(item.get("subscriptionType", ""))
        prop, prop_value = item.get("propertyName"), item.get("propertyValue")
        event_type = _HUBSPOT_TYPES.get(kind) or "hubspot_" + snake_case(kind)
        if kind == "deal.propertyChange" and prop == "dealstage":
            event_type = _HUBSPOT_STAGES.get(str(prop_value), "deal_stage_changed")
        value = None
        if prop == "amount" and prop_value is not None:
            try:
                value = float(prop_value)
            except (TypeError, ValueError):
                value = None
        events.append(
            _envelope(
                event_id=f"hubspot:{item.get('eventId')}",
                source="crm",
                event_type=event_type,
                occurred_at=parse_time(item.get("occurredAt")),
                received_at=received_at,
                subject=item.get("objectId"),
                value=value,
                properties=item,
                context={"provider": "hubspot", "portal_id": item.get("portalId")},
            )
        )
    return events


def map_sendgrid(payload: object, *, received_at: datetime) -> list[Fields]:
    events = []
    for item in _objects(payload, "SendGrid events"):
        kind = str(item.get("event", ""))
        context = {"provider": "sendgrid"}
        for name in ("useragent", "ip", "url", "category"):
            if name in item:
                context[name] = item[name]
        events.append(
            _envelope(
                event_id=f"sendgrid:{item.get('sg_event_id')}",
                source="email",
                event_type=_SENDGRID_TYPES.get(kind) or "email_" + snake_case(kind),
                occurred_at=parse_time(item.get("timestamp")),
                received_at=received_at,
                subject=item.get("email"),
                properties=item,
                context=context,
            )
        )
    return events


def _nest(pairs: Sequence[tuple[str, str]]) -> Fields:
    """``data[merges][FNAME]=x`` form fields → ``{"data": {"merges": {"FNAME": "x"}}}``."""
    root: Fields = {}
    for name, value in pairs:
        parts = name.replace("]", "").split("[")
        node = root
        for part in parts[:-1]:
            child = node.get(part)
            if not isinstance(child, dict):
                child = node[part] = {}
            node = child
        node[parts[-1]] = value
    return root


def map_mailchimp(
    pairs: Sequence[tuple[str, str]], *, delivery_id: str, received_at: datetime
) -> list[Fields]:
    form = _nest(pairs)
    kind = form.get("type")
    if not isinstance(kind, str) or not kind:
        raise SchemaError("type: Mailchimp webhooks carry a type field")
    data = form.get("data") if isinstance(form.get("data"), dict) else {}
    assert isinstance(data, dict)
    return [
        _envelope(
            event_id=f"mailchimp:{delivery_id}",
            source="email",
            event_type=_MAILCHIMP_TYPES.get(kind) or "mailchimp_" + snake_case(kind),
            occurred_at=parse_time(form.get("fired_at")),
            received_at=received_at,
            subject=data.get("email") or data.get("id"),
            properties=data,
            context={"provider": "mailchimp", "list_id": data.get("list_id")},
        )
    ]


def map_zendesk(payload: object, *, delivery_id: str, received_at: datetime) -> list[Fields]:
    events = []
    for index, item in enumerate(_objects(payload, "Zendesk events")):
        kind = str(item.get("type", "")).removeprefix("zen:event-type:")
        detail = item.get("detail") if isinstance(item.get("detail"), dict) else {}
        change = item.get("event") if isinstance(item.get("event"), dict) else {}
        assert isinstance(detail, dict) and isinstance(change, dict)
        event_type = _ZENDESK_TYPES.get(kind) or "zendesk_" + snake_case(kind or "event")
        if kind == "ticket.status_changed":
            event_type = _ZENDESK_STATUSES.get(str(change.get("current", "")).lower(),
                                               "ticket_status_changed")
        events.append(
            _envelope(
                event_id=f"zendesk:{item.get('id') or f'{delivery_id}:{index}'}",
                source="support",
                event_type=event_type,
                occurred_at=parse_time(item.get("time")),
                received_at=received_at,
                subject=detail.get("requester_id") or item.get("subject"),
                properties={"detail": detail, "event": change},
                context={"provider": "zendesk", "account_id": item.get("account_id")},
            )
        )
    return events


def map_standard(
    payload: object, *, source: str, msg_id: str, received_at: datetime
) -> list[Fields]:
    """Standard Webhooks' ``{type, timestamp, data}`` shape, from any tool."""
    items = _objects(payload, "events")
    events = []
    for index, item in enumerate(items):
        data = item.get("data") if isinstance(item.get("data"), dict) else {}
        assert isinstance(data, dict)
        subject = item.get("subject_id") or data.get("subject_id")
        events.append(
            _envelope(
                event_id=msg_id if len(items) == 1 else f"{msg_id}:{index}",
                source=source,
                event_type=snake_case(str(item.get("type", ""))),
                occurred_at=parse_time(item.get("timestamp")),
                received_at=received_at,
                subject=subject,
                value=as_number(item.get("value", data.get("value"))),
                properties=data,
                context={"provider": "standard-webhooks"},
            )
        )
    return events
