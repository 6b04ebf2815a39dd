"""Hostile input on the real stack: no event stops, skews or slips past the pipeline.

Hypothesis sends hostile native batches (extreme and malformed event times, deep nesting,
huge and odd ids and strings, NaN and infinite numbers, gzip bodies with several members
or trailing garbage, batches mixing valid and invalid events, retries, the same ids
under another source) and webhook deliveries of every provider, signed and badly signed,
replayed. Each answer is checked against the test's own expectation, event by event.
Then records ingest would refuse are written straight to the topics (an older producer
could have written them), and the consumers are checked, not only the answers:

- scoring and alerts catch up: their stored offsets reach the topics' ends and
  ``kpipulse_consumer_lag`` is 0;
- every accepted event is counted exactly once (bucket counts of count KPIs of the
  test's own types), or dead-lettered by scoring as older than the KPIs' retention;
  nothing refused as a whole was counted;
- every refused event is in the DLQ with the reason ingest gave; every poison record
  is dead-lettered by its consumer (stage, origin), and the valid records after it count.

``KPIPULSE_HOSTILE_EXAMPLES`` sets the examples (default 12, about a minute with the
checks); ``make fuzz`` runs more.
"""

from __future__ import annotations

import itertools
import os
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

import httpx
import orjson
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from shared.contracts.events import SOURCES
from tests.chaos.checks import eventually, stored_offsets, topic_end
from tests.e2e.conftest import Stack
from tests.e2e.hostile_consumers import (
    Poison,
    bucket_counts,
    consumer_lag,
    count_kpis,
    create_kpis,
    letters,
    poison_records,
    produce,
    read_all,
    retire_kpis,
    seen,
)
from tests.e2e.hostile_events import DEFECTS, hostile_event, not_an_object
from tests.e2e.hostile_requests import (
    ENCODINGS,
    PROVIDERS,
    SHAPES,
    SIGNING,
    WEBHOOK_DEFECTS,
    WHOLE,
    Request,
    native_request,
    webhook_request,
)

EXAMPLES = int(os.environ.get("KPIPULSE_HOSTILE_EXAMPLES", "12"))

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(240 + EXAMPLES * 10)]


@dataclass
class Ledger:
    """What ingest answered, as the consumers must reflect it."""

    #: (source, event id) accepted -> counted (False: older than the retention).
    accepted: dict[tuple[str, str], bool] = field(default_factory=dict)
    #: Per-event refusals: (needle in the letter, index in the request, reason's words).
    refused: list[tuple[str, int, str]] = field(default_factory=list)
    #: Events of requests refused as a whole (or replays): must not have been counted.
    unpublished: set[tuple[str, str]] = field(default_factory=set)
    statuses: Counter[int] = field(default_factory=Counter)


def send(stack: Stack, request: Request, ledger: Ledger) -> None:
    """Send ``request`` and check its answer against the expectation, event by event."""
    request.sent += 1
    expected = request.answer()
    response = httpx.post(f"{stack.ingest}{request.path}", content=request.body,
                          headers=request.headers, timeout=30)
    ledger.statuses[response.status_code] += 1
    where = f"{request.label} (sent {request.sent}x): {response.status_code} {response.text[:600]}"
    assert response.status_code == expected.status, where
    answer = response.json()
    if expected.says:
        assert expected.says in str(answer.get("detail", "")).lower(), where
    if request.webhook and response.status_code == 200:
        assert answer["replayed"] is expected.replayed, where
    accepted = iter(answer.get("accepted", []))
    rejected = {r["index"]: r["reason"] for r in answer.get("rejected", [])}
    for index, (event, fate) in enumerate(zip(request.events, request.fates(), strict=True)):
        if fate is None:
            if event.event_id is not None:
                ledger.unpublished.add((request.source, event.event_id))
            continue
        if fate.accepted:
            event_id = next(accepted, None)
            assert event_id is not None and index not in rejected, f"[{index}] {where}"
            if event.event_id is not None and not request.webhook:
                assert event_id == event.event_id, f"[{index}] {where}"
            ledger.accepted[(request.source, event_id)] = fate.counted
        else:
            assert fate.names in rejected.get(index, ""), f"[{index}] {fate.names}: {where}"
            ledger.refused.append((event.needle, index, fate.names))
    assert next(accepted, None) is None, f"more accepted than expected: {where}"


def hostile_native(
    data: st.DataObject, stack: Stack, tag: str, numbers: itertools.count[int]
) -> Request:
    source = data.draw(st.sampled_from(SOURCES), "source")
    shape = data.draw(st.sampled_from(SHAPES), "shape")
    count = 1 if shape == "single" else data.draw(st.integers(1, 6), "events")
    now = datetime.now(UTC)
    events = []
    for _ in range(count):
        if data.draw(st.integers(0, 30), "object?") == 0:
            events.append(not_an_object(data.draw(st.sampled_from([42, "event", None, []]))))
            continue
        defect = data.draw(st.sampled_from(list(DEFECTS)), "defect")
        own = data.draw(st.sampled_from((None, source)), "source field")
        events.append(hostile_event(tag=tag, number=next(numbers), source=own, defect=defect,
                                    now=now))
    return native_request(
        stack, source=source, events=events, shape=shape,
        # Mostly plain and whole, so that most requests reach the events' own checks.
        encoding=data.draw(st.sampled_from(("identity",) * 6 + ENCODINGS), "encoding"),
        whole=data.draw(st.sampled_from(("none",) * 3 * len(WHOLE) + tuple(WHOLE)), "whole"),
    )


def hostile_webhook(
    data: st.DataObject, stack: Stack, tag: str, numbers: itertools.count[int]
) -> Request:
    provider = data.draw(st.sampled_from(PROVIDERS), "provider")
    count = data.draw(st.integers(1, 3), "items")
    return webhook_request(
        stack, tag=tag, provider=provider,
        source=data.draw(st.sampled_from(SOURCES), "source"),
        numbers=[next(numbers) for _ in range(count)],
        defects=data.draw(st.lists(st.sampled_from(WEBHOOK_DEFECTS), min_size=count,
                                   max_size=count), "defects"),
        signing=data.draw(st.sampled_from(SIGNING), "signing"),
        now=datetime.now(UTC),
    )


def under_other_source(request: Request, stack: Stack, source: str) -> Request:
    """The native request's events again, with their ids, sent under ``source``: ids are
    unique per source, so each source counts its own."""
    events = [
        replace(event, fields={**event.fields, "source": source})
        if isinstance(event.fields, dict) and "source" in event.fields else event
        for event in request.events
    ]
    return native_request(stack, source=source, events=events, shape="batch",
                          encoding="identity", whole="none")


def every_case(stack: Stack, tag: str, numbers: itertools.count[int]) -> list[Request]:
    """Each defect, whole-request defect, encoding and provider once, then a retry and the
    same ids under another source: what hypothesis may not draw in a short run."""
    now = datetime.now(UTC)
    defects = list(DEFECTS)
    requests = [
        native_request(stack, source=SOURCES[i % 4], shape="batch", encoding="identity",
                       whole="none", events=[
                           hostile_event(tag=tag, number=next(numbers), source=None,
                                         defect=defect, now=now)
                           for defect in defects[i:i + 6]])
        for i in range(0, len(defects), 6)
    ]
    one = [hostile_event(tag=tag, number=next(numbers), source="web", defect="none", now=now)]
    requests += [native_request(stack, source="web", events=one, shape="single",
                                encoding=encoding, whole="none") for encoding in ENCODINGS]
    other = [hostile_event(tag=tag, number=next(numbers), source=None, defect="none", now=now)]
    requests += [native_request(stack, source="crm", events=other, shape="array",
                                encoding="identity", whole=whole) for whole in WHOLE]
    for provider in PROVIDERS:
        for signing in dict.fromkeys(SIGNING):
            requests.append(webhook_request(
                stack, tag=tag, provider=provider, source=SOURCES[len(requests) % 4],
                numbers=[next(numbers) for _ in WEBHOOK_DEFECTS], defects=list(WEBHOOK_DEFECTS),
                signing=signing, now=now))
    delivered = next(r for r in reversed(requests) if r.webhook and r.refusal is None)
    requests += [requests[0], delivered, under_other_source(requests[0], stack, "support")]
    return requests


def send_hostile_traffic(stack: Stack, tag: str, ledger: Ledger) -> None:
    numbers = itertools.count()
    for request in every_case(stack, tag, numbers):
        send(stack, request, ledger)

    # No shrinking: every request sent stays sent (its events are in the ledger and the
    # topics), and a failing example reports its draws, which name each request.
    @settings(max_examples=EXAMPLES, deadline=None, database=None, derandomize=False,
              suppress_health_check=list(HealthCheck), phases=[Phase.generate])
    @given(data=st.data())
    def example(data: st.DataObject) -> None:
        sent: list[Request] = []
        for _ in range(data.draw(st.integers(1, 4), "requests")):
            move = data.draw(st.sampled_from(("native", "native", "webhook", "again", "other")))
            natives = [r for r in sent if not r.webhook and r.refusal is None]
            if move == "again" and sent:  # an SDK's retry, or a provider's replay
                request = data.draw(st.sampled_from(sent), "again")
            elif move == "other" and natives:
                first = data.draw(st.sampled_from(natives), "other")
                others = [s for s in SOURCES if s != first.source]
                request = under_other_source(first, stack, data.draw(st.sampled_from(others)))
            elif move == "webhook":
                request = hostile_webhook(data, stack, tag, numbers)
            else:
                request = hostile_native(data, stack, tag, numbers)
            send(stack, request, ledger)
            sent.append(request)

    example()


async def caught_up(stack: Stack, sessions: async_sessionmaker[AsyncSession]) -> object:
    """True once scoring and alerts applied every record of their topics; else what lags."""
    topics = stack.settings.kafka.topics()
    behind: dict[str, object] = {}
    for group, topic in ((stack.settings.scoring.group_id, topics.events),
                         (stack.settings.alerts.group_id, topics.kpi_values)):
        end = await topic_end(stack.settings.kafka.bootstrap_servers, topic)
        stored = await stored_offsets(sessions, group, topic)
        gap = {p: o - stored.get(p, 0) for p, o in end.items() if o != stored.get(p, 0)}
        if gap:
            behind[group] = gap
    for service in ("scoring", "alerts"):
        lag = {k: v for k, v in consumer_lag(stack.url(service), service).items() if v}
        if lag:
            behind[f"{service} /metrics"] = lag
    return behind or True


def check_dead_letters(
    stack: Stack, dlq: list[tuple[dict[str, Any], Any]], ledger: Ledger, poison: list[Poison]
) -> None:
    by_stage: dict[str, list[tuple[dict[str, Any], Any]]] = {}
    for headers, message in dlq:
        by_stage.setdefault(str(headers["stage"]), []).append((headers, message))
    ingest = by_stage.get("ingest", [])
    for needle, index, names in ledger.refused:
        prefix = f"index {index}: "
        assert any(
            str(h["reason"]).startswith(prefix) and names in str(h["reason"])
            # Its key is its id, when it has one; its payload shows it unless cut at the
            # letter's size bound (a letter may carry the whole request).
            and (needle.encode() in (m.key or b"") or needle.encode() in m.value)
            for h, m in ingest
        ), f"no ingest dead letter for {needle!r} ({prefix}{names})"
    origins = {(str(h["source_topic"]), h["source_partition"], h["source_offset"]): h
               for stage in ("scoring", "alerts") for h, _ in by_stage.get(stage, [])}
    for record in poison:
        letter = origins.get((record.topic, record.partition, record.offset))
        assert letter is not None, f"poison not dead-lettered: {record}"
        assert letter["stage"] == record.stage, (record, letter)
        assert record.says in str(letter["reason"]).lower(), (record, letter)
    too_old = {event_id for (source, event_id), counted in ledger.accepted.items()
               if not counted}
    refused_old = {
        m.key.decode() for h, m in by_stage.get("scoring", [])
        if m.key and "older than the retention" in str(h["reason"])
    }
    assert too_old <= refused_old, f"too old, not dead-lettered: {sorted(too_old - refused_old)}"


async def test_hostile_input_is_refused_or_counted_exactly_once(
    stack: Stack, sessions: async_sessionmaker[AsyncSession]
) -> None:
    started = time.monotonic()
    tag = uuid.uuid4().hex[:8]
    kpis = count_kpis(tag)
    create_kpis(stack, list(kpis.values()))
    try:
        ledger = Ledger()
        send_hostile_traffic(stack, tag, ledger)
        topics = stack.settings.kafka.topics()
        records, valid_after = poison_records(tag)
        landed = await produce(stack, topics.events, records, "scoring")
        poison = [p for p in landed if p.label != "valid"]
        for event_id in valid_after:
            ledger.accepted[("web", event_id)] = True
        poison += await produce(stack, topics.kpi_values, [
            ("not JSON", None, b"{not json"),
            ("not a KPI value", b"x", orjson.dumps({"kpi_key": "x", "value": "NaN"})),
        ], "alerts")

        await eventually(lambda: caught_up(stack, sessions), timeout=120,
                         what="scoring and alerts applied every record")
        expected = Counter(source for (source, _), counted in ledger.accepted.items()
                           if counted)
        keys = {kpis[source]["key"]: source for source in SOURCES}
        counts = await bucket_counts(sessions, list(keys))
        assert {keys[k]: n for k, n in counts.items()} == {s: expected[s] for s in SOURCES}, (
            f"counted per source (expected {dict(expected)}; statuses {ledger.statuses})"
        )
        counted = [pair for pair, c in ledger.accepted.items() if c]
        missing = set(counted) - await seen(sessions, counted)
        assert not missing, f"accepted, never counted: {sorted(missing)[:10]}"
        # Ids no event may have (NUL, over 128 characters) cannot have been counted.
        storable = {(s, i) for s, i in ledger.unpublished if "\x00" not in i and len(i) <= 128}
        slipped = await seen(sessions, sorted(storable - set(ledger.accepted)))
        assert not slipped, f"refused as a whole, yet counted: {sorted(slipped)[:10]}"
        dlq = letters(await read_all(stack, topics.events_dlq))
        check_dead_letters(stack, dlq, ledger, poison)
    finally:
        retire_kpis(stack, list(kpis.values()))
    stack.assert_alive()
    print(f"hostile: {EXAMPLES} examples, {sum(ledger.statuses.values())} requests "
          f"{dict(ledger.statuses)}, {len(ledger.accepted)} accepted, {len(ledger.refused)} "
          f"refused per event, {len(poison)} poison, {time.monotonic() - started:.0f} s")
