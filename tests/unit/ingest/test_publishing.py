"""Ingest's publishing step without Kafka: fakes and the embedded bus."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
from prometheus_client import CollectorRegistry

from services.ingest.domain.bounds import Bounds
from services.ingest.domain.envelopes import Rejection, Validated, validate
from services.ingest.metrics import IngestMetrics
from services.ingest.publishing import Ingestor
from shared.bus.dlq import TRUNCATION_MARKER, DeadLetterQueue, describe, truncated
from shared.bus.embedded import EmbeddedLog, EmbeddedPublisher
from shared.bus.ports import Publisher, PublishError
from shared.contracts.topics import TopicNames
from tests.unit.ingest.fakes import FakePublisher

NOW = datetime(2026, 12, 1, tzinfo=UTC)
TOPICS = TopicNames.with_prefix("")
LETTER_LIMIT = 4096


def ingestor(publisher: Publisher) -> Ingestor:
    return Ingestor(
        publisher=publisher,
        topics=TOPICS,
        metrics=IngestMetrics(CollectorRegistry()),
        max_event_bytes=65536,
        max_dead_letter_bytes=LETTER_LIMIT,
    )


def event(event_id: str, **fields: Any) -> dict[str, Any]:
    return {"event_id": event_id, "source": "web", "type": "signup", "occurred_at": NOW,
            "received_at": NOW, **fields}


def nested(depth: int) -> dict[str, Any]:
    value: Any = 1
    for _ in range(depth):
        value = {"k": value}
    return value  # type: ignore[no-any-return]


def deep_json(depth: int) -> bytes:
    return b'{"k":' * depth + b"1" + b"}" * depth


async def test_accepted_events_go_to_the_events_topic_keyed_by_id() -> None:
    fake = FakePublisher()
    outcome = await ingestor(fake).publish(
        "web", validate([event("a"), event("b")], bounds=Bounds()), body=b"{}"
    )
    assert outcome.accepted == ["a", "b"] and outcome.rejected == []
    records = fake.published[TOPICS.events]
    assert [r.key for r in records] == [b"a", b"b"]
    assert orjson.loads(records[0].value)["event_id"] == "a"
    assert TOPICS.events_dlq not in fake.published


async def test_a_valid_and_a_300_deep_event_publish_both_with_the_raw_bytes_as_letter() -> None:
    body = b'{"batch":[{"type":"signup"},{"type":"signup","properties":' + deep_json(300) + b"}]}"
    fake = FakePublisher()
    validated = validate([event("good"), event("bad", properties=nested(300))], bounds=Bounds())
    outcome = await ingestor(fake).publish("web", validated, body=body)
    assert outcome.accepted == ["good"]
    (letter,) = fake.published[TOPICS.events_dlq]
    assert letter.value == body  # the request as it came, never re-encoded
    assert letter.key == b"bad"
    headers = dict(letter.headers)
    assert headers["kpipulse-dlq-reason"] == (
        b"index 1: properties: nested deeper than the limit of 32 levels"
    )
    assert headers["kpipulse-dlq-stage"] == b"ingest"


async def test_a_letter_is_bounded_and_says_it_was_cut() -> None:
    body = b"x" * 100_000
    fake = FakePublisher()
    validated = validate([event("good"), event("bad", properties=nested(40))], bounds=Bounds())
    await ingestor(fake).publish("web", validated, body=body)
    (letter,) = fake.published[TOPICS.events_dlq]
    assert len(letter.value) <= LETTER_LIMIT
    assert letter.value.startswith(b"xxxx")
    assert letter.value.endswith(b" of 100000 bytes]")


async def test_a_rejection_that_cannot_be_encoded_falls_back_to_the_request_bytes() -> None:
    cyclic: dict[str, Any] = {}
    cyclic["self"] = cyclic
    weird = Rejection(0, "type: bad", {1: "non-string key", "deep": cyclic})
    fake = FakePublisher()
    await ingestor(fake).publish("web", Validated([], [weird]), body=b"the request")
    assert fake.published[TOPICS.events_dlq][0].value == b"the request"


async def test_an_encodable_rejection_carries_its_own_json() -> None:
    fake = FakePublisher()
    outcome = await ingestor(fake).publish(
        "web", validate([event("ok"), event("bad", type="Not Snake")], bounds=Bounds()),
        body=b"whole request",
    )
    assert [r.index for r in outcome.rejected] == [1]
    (letter,) = fake.published[TOPICS.events_dlq]
    assert orjson.loads(letter.value)["event_id"] == "bad"


async def test_an_unacknowledged_publish_raises_and_reports_nothing_accepted() -> None:
    fake = FakePublisher(fail=True)
    with pytest.raises(PublishError):
        await ingestor(fake).publish("web", validate([event("a")], bounds=Bounds()), body=b"")
    assert fake.published == {}


async def test_the_outcome_waits_for_the_acknowledgement() -> None:
    fake = FakePublisher(hold=asyncio.Event())
    task = asyncio.create_task(
        ingestor(fake).publish("web", validate([event("a")], bounds=Bounds()), body=b"")
    )
    for _ in range(20):  # let the publish run as far as it can without the ack
        await asyncio.sleep(0)
    assert not task.done()
    assert fake.hold is not None
    fake.hold.set()
    assert (await task).accepted == ["a"]


async def test_letters_round_trip_through_the_embedded_bus(tmp_path: Path) -> None:
    log = EmbeddedLog(tmp_path / "log.sqlite", partitions=2)
    validated = validate([event("good"), event("bad", context=nested(50))], bounds=Bounds())
    await ingestor(EmbeddedPublisher(log)).publish("web", validated, body=b"raw body")
    events = log.read(TOPICS.events, {0: 0, 1: 0}, 10)
    letters = log.read(TOPICS.events_dlq, {0: 0, 1: 0}, 10)
    assert [m.key for m in events] == [b"good"]
    (letter,) = letters
    assert letter.value == b"raw body"
    described = describe(letter)
    assert described["stage"] == "ingest"
    assert described["reason"] == "index 1: context: nested deeper than the limit of 32 levels"


def test_truncation_keeps_the_bound_and_short_payloads_whole() -> None:
    assert truncated(b"short", 1024) == b"short"
    cut = truncated(b"y" * 5000, 1024)
    assert len(cut) <= 1024 and cut.endswith(b" of 5000 bytes]")
    assert cut.startswith(b"yyy") and b"truncated by kpipulse" in cut
    assert len(truncated(b"z" * 10, 5)) <= 5  # even a bound below the marker's size
    marker_at = cut.index(b"...[")
    assert cut[:marker_at] == b"y" * marker_at
    assert cut[marker_at:] == TRUNCATION_MARKER % (marker_at, 5000)


def test_rejected_payload_never_raises() -> None:
    assert DeadLetterQueue.rejected_payload(b"as is") == b"as is"
    assert DeadLetterQueue.rejected_payload({"a": 1}) == b'{"a":1}'
    deep = nested(1000)
    assert DeadLetterQueue.rejected_payload(deep, fallback=b"raw") == b"raw"
    assert len(DeadLetterQueue.rejected_payload("x" * 5000, max_bytes=1024)) <= 1024


async def test_many_unencodable_events_write_the_request_once() -> None:
    body = b"r" * 3000
    fake = FakePublisher()
    items = [event(f"bad-{i}", properties=nested(40)) for i in range(100)]
    await ingestor(fake).publish("web", validate(items, bounds=Bounds()), body=body)
    letters = fake.published[TOPICS.events_dlq]
    assert len(letters) == 100
    assert letters[0].value == body
    assert all(
        letter.value == b"...[kpipulse: the request's 3000 bytes are in its dead letter of "
        b"index 0]" for letter in letters[1:]
    )
    assert [letter.key for letter in letters[:2]] == [b"bad-0", b"bad-1"]
