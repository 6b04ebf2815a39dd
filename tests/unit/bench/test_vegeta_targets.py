"""vegeta's targets: one distinct event per request, each under its source's key."""

from __future__ import annotations

import base64

import orjson

from bench.vegeta import needed_targets, target_lines

KEYS = {"web": "key-web", "crm": "key-crm"}
EVENTS = [{"source": "web", "type": "page_viewed"}, {"source": "crm", "type": "deal_won"}]


def test_every_request_of_the_attack_has_a_target_of_its_own() -> None:
    count = needed_targets(333.3, 3)
    assert count >= 333.3 * 3  # vegeta must never run out
    lines = list(target_lines("http://ingest/v1/events", KEYS, EVENTS, count))
    bodies = [orjson.loads(base64.b64decode(orjson.loads(line)["body"])) for line in lines]
    assert len(lines) == count
    assert len({body["event_id"] for body in bodies}) == count


def test_a_target_is_a_single_event_post_under_its_sources_key() -> None:
    line = next(iter(target_lines("http://ingest/v1/events", KEYS, EVENTS[1:], 1)))
    target = orjson.loads(line)
    body = orjson.loads(base64.b64decode(target["body"]))
    assert target["method"] == "POST"
    assert target["url"] == "http://ingest/v1/events"
    assert target["header"]["Authorization"] == ["Bearer key-crm"]
    assert body["type"] == "deal_won"
    assert body["source"] == "crm"
    assert "occurred_at" in body
