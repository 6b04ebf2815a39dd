"""Benchmark payloads from the realistic day generator, and their Kafka envelopes.

The raw-aiokafka baselines must produce the *same messages* ingest produces: the
envelope bytes here come from the same contract (``EventEnvelope``) serialised the same
way ingest does (``ReadEvent.to_bytes``), so sizes match byte for byte.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from services.simulator.generator import DayGenerator
from shared.contracts.event_reader import ReadEvent
from shared.contracts.events import EventEnvelope

Event = dict[str, Any]


def generated(count: int, *, seed: int = 7, sources: tuple[str, ...] | None = None,
              end: datetime | None = None) -> list[Event]:
    """``count`` events of the last 24 h (before ``end``), in the generator's mix."""
    rng = random.Random(seed)
    end = end or datetime.now(UTC)
    start = end - timedelta(days=1)
    out: list[Event] = []
    while len(out) < count:
        for event in DayGenerator(rng, scale=20).day(start):
            if sources is None or event["source"] in sources:
                out.append(event)
    return out[:count]


def fresh_copies(events: list[Event], *, seed: int = 11) -> Iterator[Event]:
    """Endless copies with new ids and ``occurred_at`` now (for live-rate benchmarks)."""
    rng = random.Random(seed)
    while True:
        for event in events:
            copy = dict(event)
            copy["event_id"] = uuid.UUID(int=rng.getrandbits(128)).hex
            copy["occurred_at"] = datetime.now(UTC).isoformat()
            yield copy


def envelope_bytes(event: Event, received_at: datetime | None = None) -> tuple[bytes, bytes]:
    """(key, value) exactly as ingest would publish ``event``."""
    item = dict(event)
    item["received_at"] = received_at or datetime.now(UTC)
    envelope = EventEnvelope.model_validate(item)
    return envelope.event_id.encode(), ReadEvent.of(envelope).to_bytes()


def dumps(value: object) -> bytes:
    return orjson.dumps(value)
