"""Provider payloads → canonical envelopes (validated with the shared contract)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import msgspec
import pytest

from services.ingest.domain import webhooks as mapping
from services.ingest.domain.bounds import Bounds
from services.ingest.domain.envelopes import SchemaError, validate

NOW = datetime(2026, 3, 1, tzinfo=UTC)


def valid(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    result = validate(events, bounds=Bounds())
    assert not result.rejected, result.rejected
    return [msgspec.structs.asdict(env) for _, env in result.accepted]


def test_hubspot() -> None:
    events = valid(mapping.map_hubspot(
        [
            {"eventId": 1, "subscriptionType": "contact.creation", "objectId": 11,
             "occurredAt": 1772323200000, "portalId": 9},
            {"eventId": 2, "subscriptionType": "deal.propertyChange", "objectId": 12,
             "propertyName": "dealstage", "propertyValue": "closedwon"},
            {"eventId": 3, "subscriptionType": "deal.propertyChange", "objectId": 12,
             "propertyName": "amount", "propertyValue": "1200.5"},
        ],
        received_at=NOW,
    ))
    types = [e["type"] for e in events]
    assert types == ["lead_created", "deal_won", "hubspot_deal_property_change"]
    assert events[0]["event_id"] == "hubspot:1"
    assert events[0]["source"] == "crm"
    assert events[0]["subject_id"] == "11"
    assert events[0]["occurred_at"] == datetime(2026, 3, 1, tzinfo=UTC)
    assert events[2]["value"] == 1200.5


def test_sendgrid() -> None:
    events = valid(mapping.map_sendgrid(
        [{"email": "a@b.c", "timestamp": 1772323200, "event": "open", "sg_event_id": "s1",
          "useragent": "UA"},
         {"email": "a@b.c", "timestamp": 1772323200, "event": "group_unsubscribe",
          "sg_event_id": "s2"}],
        received_at=NOW,
    ))
    assert [e["type"] for e in events] == ["email_opened", "email_unsubscribed"]
    assert events[0]["subject_id"] == "a@b.c"
    assert events[0]["context"]["useragent"] == "UA"
    assert events[0]["event_id"] == "sendgrid:s1"


def test_mailchimp_form_fields() -> None:
    pairs = [("type", "subscribe"), ("fired_at", "2026-03-01 10:00:00"),
             ("data[email]", "x@y.z"), ("data[list_id]", "L1"), ("data[merges][FNAME]", "Lan")]
    (event,) = valid(mapping.map_mailchimp(pairs, delivery_id="d1", received_at=NOW))
    assert event["type"] == "list_subscribed"
    assert event["source"] == "email"
    assert event["subject_id"] == "x@y.z"
    assert event["properties"]["merges"] == {"FNAME": "Lan"}
    assert event["occurred_at"] == datetime(2026, 3, 1, 10, tzinfo=UTC)
    with pytest.raises(SchemaError, match="type"):
        mapping.map_mailchimp([("data[email]", "x")], delivery_id="d", received_at=NOW)


def test_zendesk() -> None:
    (created, solved) = valid([
        *mapping.map_zendesk(
            {"type": "zen:event-type:ticket.created", "id": "z1", "time": "2026-03-01T09:00:00Z",
             "account_id": 5, "detail": {"requester_id": "r1"}, "event": {}},
            delivery_id="inv", received_at=NOW,
        ),
        *mapping.map_zendesk(
            {"type": "zen:event-type:ticket.status_changed", "detail": {"requester_id": "r1"},
             "event": {"current": "SOLVED"}},
            delivery_id="inv2", received_at=NOW,
        ),
    ])
    assert created["type"] == "ticket_opened"
    assert created["event_id"] == "zendesk:z1"
    assert created["subject_id"] == "r1"
    assert solved["type"] == "ticket_resolved"
    assert solved["event_id"] == "zendesk:inv2:0"


def test_standard() -> None:
    (event,) = valid(mapping.map_standard(
        {"type": "invoice.paid", "timestamp": "2026-03-01T08:00:00Z",
         "data": {"subject_id": "cust-1", "value": 99}},
        source="crm", msg_id="msg_1", received_at=NOW,
    ))
    assert event["type"] == "invoice_paid"
    assert event["event_id"] == "msg_1"
    assert event["source"] == "crm"
    assert event["value"] == 99
    assert event["subject_id"] == "cust-1"
    with pytest.raises(SchemaError):
        mapping.map_standard([1], source="crm", msg_id="m", received_at=NOW)
