"""What the consumers made of the hostile input: test KPIs, poison, lag, the DLQ.

``count_kpis`` are count KPIs of the test's own event types, one per source, created on
the shared stack through the admin API (and retired afterwards), so that their buckets
count exactly the test's events. ``poison`` writes straight to the topics what ingest
would refuse but an older producer could have written. The readers look at the state
the consumers committed: bucket rows, seen ids, stored offsets, the DLQ topic.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.structs import TopicPartition
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import func, select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.scoring.tables import kpi_buckets, seen_events
from shared.bus.dlq import describe
from shared.bus.ports import Message
from shared.contracts.events import SOURCES
from tests.chaos.checks import topic_end
from tests.e2e.conftest import Stack
from tests.e2e.hostile_events import RETENTION_DAYS, event_type, iso, nested_raw
from tests.e2e.hostile_requests import webhook_types


def count_kpis(tag: str) -> dict[str, dict[str, Any]]:
    """Per source, a count KPI of every type the test sends under that source."""
    types = webhook_types(tag)
    counted = {
        "web": [event_type(tag)],
        "crm": [event_type(tag), types["hubspot"]],
        "email": [event_type(tag), types["sendgrid"], types["mailchimp"]],
        "support": [event_type(tag), types["zendesk"]],
    }
    return {source: _count_kpi(f"hx_{tag}_{source}", source, counted[source])
            for source in SOURCES}


def _count_kpi(key: str, source: str, types: list[str]) -> dict[str, Any]:
    return {
        "key": key, "name": f"Hostile test count ({source})",
        "objective": "Count the hostile test's events exactly once",
        "perspective": "internal_process", "stage": "engage", "department": "qa",
        "owners": [{"name": "QA", "email": "qa@example.com"}],
        "formula": {"count": {"source": source, "type": types}},
        "window": "30d", "retention": f"{RETENTION_DAYS}d", "update_every": "1m",
        "review_period": "month", "unit": "events", "direction": "higher_is_better",
        "baseline": 0, "minimum": 0, "target": 1, "weight": 1, "expires_on": "2030-01-01",
        "indicator": "leading", "tracking_cost": {"amount": 0, "currency": "USD", "per": "month"},
        "data_collection": "tests/e2e/test_hostile.py", "viewers": ["qa"],
    }


def create_kpis(stack: Stack, kpis: Sequence[dict[str, Any]]) -> None:
    for kpi in kpis:
        response = httpx.post(f"{stack.scoring}/v1/kpis", json=kpi,
                              headers=stack.admin_headers(), timeout=30)
        assert response.status_code == 201, response.text


def retire_kpis(stack: Stack, kpis: Sequence[dict[str, Any]]) -> None:
    for kpi in kpis:  # the stack is shared: leave its catalog as it was
        response = httpx.delete(f"{stack.scoring}/v1/kpis/{kpi['key']}",
                                headers=stack.admin_headers(), timeout=30)
        assert response.status_code == 204, response.text


@dataclass(frozen=True)
class Poison:
    """A record written straight to a topic, where it landed, and who must refuse it."""

    label: str
    topic: str
    partition: int
    offset: int
    stage: str

    @property
    def says(self) -> str:
        """What its letter's reason must mention (lower case)."""
        return POISON_SAYS[(self.stage, self.label)]


POISON_SAYS = {
    ("scoring", "year 9999 at -14:00"): "year 10000 is out of range",
    ("scoring", "year 1 at +14:00"): "older than the retention",
    ("scoring", "not JSON"): "invalid event",
    ("scoring", "missing fields"): "field required",
    ("scoring", "unknown source"): "source",
    ("scoring", "nested 3000 deep"): "recursion limit",
    ("scoring", "infinite value"): "value",
    ("alerts", "not JSON"): "invalid kpi value",
    ("alerts", "not a KPI value"): "invalid kpi value",
}


def _envelope(event_id: str, tag: str, occurred_at: str, **extra: Any) -> dict[str, Any]:
    now = datetime.now(UTC)
    return {"schema_version": 1, "event_id": event_id, "source": "web", "type": event_type(tag),
            "occurred_at": occurred_at, "received_at": iso(now), "properties": {}, "context": {},
            **extra}


def poison_records(tag: str) -> tuple[list[tuple[str, bytes | None, bytes]], list[str]]:
    """(label, key, value) for the events topic, poison and valid interleaved, and the
    ids of the valid ones (scoring must count them: the partition moves on)."""
    recent = iso(datetime.now(UTC) - timedelta(minutes=3))
    deep = orjson.dumps(_envelope(f"{tag}-p-deep", tag, recent, properties="@deep@"))
    poison: list[tuple[str, bytes | None, bytes]] = [
        ("year 9999 at -14:00", None,
         orjson.dumps(_envelope(f"{tag}-p-9999", tag, "9999-12-31T23:59:59-14:00"))),
        ("year 1 at +14:00", None,
         orjson.dumps(_envelope(f"{tag}-p-0001", tag, "0001-01-01T00:00:00+14:00"))),
        ("not JSON", None, b"\x00\xff not json"),
        ("missing fields", None, orjson.dumps({"event_id": f"{tag}-p-bare", "source": "web"})),
        ("unknown source", None,
         orjson.dumps(_envelope(f"{tag}-p-src", tag, recent, source="nowhere"))),
        ("nested 3000 deep", None, deep.replace(b'"@deep@"', nested_raw(3000))),
        ("infinite value", None, orjson.dumps(_envelope(f"{tag}-p-inf", tag, recent))
         .replace(b'"context":{}', b'"context":{},"value":1e400')),
    ]
    records: list[tuple[str, bytes | None, bytes]] = []
    valid: list[str] = []
    for number, (label, key, value) in enumerate(poison):
        records.append((label, key, value))
        event_id = f"{tag}-after-poison-{number}"
        valid.append(event_id)
        records.append(("valid", event_id.encode(), orjson.dumps(
            _envelope(event_id, tag, recent))))
    return records, valid


async def produce(
    stack: Stack, topic: str, records: Sequence[tuple[str, bytes | None, bytes]], stage: str
) -> list[Poison]:
    """Write ``records`` to partition 0 of ``topic`` in order; where each landed."""
    producer = AIOKafkaProducer(bootstrap_servers=stack.settings.kafka.bootstrap_servers,
                                acks="all", enable_idempotence=True)
    await producer.start()
    try:
        landed = []
        for label, key, value in records:
            meta = await producer.send_and_wait(topic, value, key=key, partition=0)
            landed.append(Poison(label, topic, meta.partition, meta.offset, stage))
        return landed
    finally:
        await producer.stop()


async def read_all(stack: Stack, topic: str) -> list[Message]:
    """Every record of ``topic`` up to its end now."""
    bootstrap = stack.settings.kafka.bootstrap_servers
    ends = {TopicPartition(topic, p): end for p, end in (await topic_end(bootstrap, topic)).items()}
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None,
                                enable_auto_commit=False, auto_offset_reset="earliest")
    await consumer.start()
    try:
        consumer.assign(list(ends))
        found: list[Message] = []
        position = dict.fromkeys(ends, 0)
        while any(position[tp] < end for tp, end in ends.items()):
            for tp, records in (await consumer.getmany(timeout_ms=500)).items():
                found += [Message(r.topic, r.partition, r.offset, r.key, r.value, r.timestamp,
                                  tuple(r.headers or ())) for r in records if r.offset < ends[tp]]
                if records:
                    position[tp] = records[-1].offset + 1
        return found
    finally:
        await consumer.stop()


def letters(messages: Sequence[Message]) -> list[tuple[dict[str, Any], Message]]:
    """Each dead letter with its headers read back."""
    return [(describe(message), message) for message in messages]


def consumer_lag(url: str, service: str) -> dict[str, float]:
    """``kpipulse_consumer_lag`` of ``service`` per topic and partition, from /metrics."""
    text = httpx.get(f"{url}/metrics", timeout=10).text
    return {
        f"{sample.labels['topic']}[{sample.labels['partition']}]": sample.value
        for family in text_string_to_metric_families(text)
        if family.name == "kpipulse_consumer_lag"
        for sample in family.samples
        if sample.labels.get("service") == service
    }


async def bucket_counts(
    sessions: async_sessionmaker[AsyncSession], keys: Sequence[str]
) -> dict[str, int]:
    c = kpi_buckets.c
    async with sessions() as session:
        rows = await session.execute(
            select(c.kpi_key, func.sum(c.count)).where(c.kpi_key.in_(keys)).group_by(c.kpi_key)
        )
        counts = {str(key): int(count) for key, count in rows}
    return {key: counts.get(key, 0) for key in keys}


async def seen(
    sessions: async_sessionmaker[AsyncSession], pairs: Sequence[tuple[str, str]]
) -> set[tuple[str, str]]:
    """Which of the (source, event id) pairs scoring recorded as counted."""
    c = seen_events.c
    found: set[tuple[str, str]] = set()
    async with sessions() as session:
        for start in range(0, len(pairs), 500):
            chunk = list(pairs[start:start + 500])
            rows = await session.execute(
                select(c.source, c.event_id).where(tuple_(c.source, c.event_id).in_(chunk))
            )
            found |= {(str(source), str(event_id)) for source, event_id in rows}
    return found
