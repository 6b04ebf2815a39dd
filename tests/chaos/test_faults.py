"""Fault injection with events flowing: nothing acknowledged is lost or counted twice.

The three services run as processes. A client keeps posting batches to ingest and
re-sends a batch (same event ids) until it is acknowledged. Meanwhile: every service is
``kill -9``-ed and restarted in turn, Kafka is stopped for 20 s (ingest must answer 503
with Retry-After and turn unready, then recover by itself) and Postgres is restarted.
Afterwards the KPI values must equal a computation made from the acknowledged events
alone, and the SMTP server must have received exactly the notices of the alert episodes
the test provoked (extra copies only as counted "uncertain" resends).
"""

from __future__ import annotations

import asyncio
import json
import math
import random
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from shared.db.engine import create_engine, create_session_factory
from shared.settings import Settings, load_settings
from tests.chaos import checks
from tests.chaos.conftest import SUMMARIES, SmtpRecorder
from tests.chaos.infra import LocalInfra
from tests.chaos.load import COMPLAINT, PAGE_VIEW, PAYMENT, SIGNUP, Loader
from tests.chaos.stack import (
    COMPLAINT_MINIMUM,
    OWNERS,
    SIGNUP_MINIMUM,
    SIGNUP_TARGET,
    Stack,
    build_stack,
    catalog_yaml,
    create_key,
    kpipulse,
)
from tests.conftest import ADMIN_TOKEN, KAFKA, create_database, drop_database

KAFKA_DOWN_S = 20.0
KPI_OF = {
    PAGE_VIEW: "chaos_page_views",
    PAYMENT: "chaos_revenue",
    SIGNUP: "chaos_signups",
    COMPLAINT: "chaos_complaints",
}
# The alert episodes the test provokes, as (owner, subject prefix) → copies expected.
EXPECTED_MAILS = {
    (OWNERS["chaos_signups"], "[FIRING]"): 1,
    (OWNERS["chaos_signups"], "[RESOLVED]"): 1,
    (OWNERS["chaos_complaints"], "[FIRING]"): 1,
}


@pytest.fixture
async def chaos_settings(tmp_path: Path) -> AsyncIterator[Settings]:
    unique = uuid.uuid4().hex[:8]
    database = f"kpipulse_chaos_{unique}"
    url = await create_database(database)
    catalog = tmp_path / "catalog.yaml"
    catalog.write_text(catalog_yaml())
    yield load_settings(
        environment="test",
        admin_token=ADMIN_TOKEN,
        database={"url": url, "pool_size": 5},
        kafka={"bootstrap_servers": KAFKA, "topic_prefix": f"chaos-{unique}.", "partitions": 3},
        scoring={"catalog_path": catalog, "group_id": f"chaos-scoring-{unique}"},
        # The weekly digest would add its own mails to the exact count of alert mails.
        alerts={"group_id": f"chaos-alerts-{unique}", "digest": {"enabled": False}},
    )
    await drop_database(database)


class Timeline:
    """What happened when, for the summary."""

    def __init__(self) -> None:
        self.started = time.monotonic()
        self.steps: list[str] = []

    def note(self, what: str) -> None:
        self.steps.append(f"{time.monotonic() - self.started:6.1f}s {what}")


async def _status(url: str) -> tuple[int, dict[str, Any]]:
    try:
        async with httpx.AsyncClient(timeout=15) as client:
            response = await client.get(url)
    except httpx.HTTPError:
        return 0, {}
    body = response.json()
    return response.status_code, body if isinstance(body, dict) else {}


async def _kill_and_restart(stack: Stack, name: str, timeline: Timeline) -> None:
    process = dict(stack.services)[name]
    await asyncio.to_thread(stack.restart, process)
    timeline.note(f"kill -9 {name}, restarted and healthy")


async def _kafka_outage(
    infra: LocalInfra, stack: Stack, loader: Loader, timeline: Timeline
) -> dict[str, object]:
    ingest_ready = f"{stack.url(stack.ingest)}/readyz"
    before_503 = loader.stats.status_503
    await asyncio.to_thread(infra.stop_kafka)
    timeline.note("kafka stopped")
    down_until = time.monotonic() + KAFKA_DOWN_S
    ready_codes: Counter[int] = Counter()
    checks_seen: set[str] = set()
    while time.monotonic() < down_until:
        code, body = await _status(ingest_ready)
        ready_codes[code] += 1
        checks_seen.add(json.dumps(body.get("checks")))
        await asyncio.sleep(1)
    during_503 = loader.stats.status_503 - before_503
    restart_s = await asyncio.to_thread(infra.start_kafka)
    timeline.note(f"kafka started again ({restart_s:.1f} s to accept connections)")
    back = time.monotonic()
    recovered_after: float | None = None
    while time.monotonic() - back < 120:
        if (await _status(ingest_ready))[0] == 200:
            recovered_after = time.monotonic() - back
            break
        await asyncio.sleep(0.5)
    timeline.note(f"ingest ready again after {recovered_after} s")
    # While the broker was away ingest must have said "not now" (503 + Retry-After,
    # checked per response by the client) and reported itself unready.
    assert during_503 > 0, "no 503 while Kafka was down"
    assert ready_codes[503] > 0 and ready_codes[200] == 0, f"/readyz during outage: {ready_codes}"
    assert checks_seen == {json.dumps({"kafka": "unreachable", "database": "ok"})}, checks_seen
    assert recovered_after is not None, (
        "ingest did not become ready within 120 s of Kafka coming back: "
        + stack.ingest.log_path.read_text()[-4000:]
    )
    assert await loader.acked_progress(60), "ingest acknowledges nothing after Kafka came back"
    timeline.note("events acknowledged again")
    return {"503_during_outage": during_503, "readyz_during_outage": dict(ready_codes),
            "ingest_ready_after_s": round(recovered_after, 1)}


async def _postgres_restart(infra: LocalInfra, stack: Stack, timeline: Timeline) -> None:
    await asyncio.to_thread(infra.stop_postgres)
    timeline.note("postgres stopped")
    await asyncio.sleep(3)
    await asyncio.to_thread(infra.start_postgres)
    timeline.note("postgres started again")
    deadline = time.monotonic() + 90
    ready: dict[str, int] = {}
    while time.monotonic() < deadline:
        ready = await asyncio.to_thread(stack.ready)
        if set(ready.values()) == {200}:
            break
        await asyncio.sleep(1)
    assert set(ready.values()) == {200}, f"services not ready after postgres restart: {ready}"
    timeline.note("all services ready again")


async def _wait_status(settings: Settings, kpi: str, statuses: set[str]) -> None:
    engine = create_engine(settings.database)
    sessions = create_session_factory(engine)

    async def reached() -> bool:
        return (await checks.current_statuses(sessions)).get(kpi) in statuses

    try:
        await checks.eventually(reached, timeout=90, what=f"{kpi} status in {statuses}")
    finally:
        await engine.dispose()


@pytest.mark.timeout(3600)
async def test_faults_lose_and_repeat_nothing(
    chaos_settings: Settings, infra: LocalInfra, smtp: SmtpRecorder, scale: int, tmp_path: Path
) -> None:
    settings = chaos_settings
    seed = random.randrange(1_000_000)
    rng = random.Random(seed)
    stack = build_stack(settings, smtp.port, tmp_path)
    kpipulse(stack.env, "topics", "create", "--timeout", "60")
    kpipulse(stack.env, "catalog", "apply", str(settings.scoring.catalog_path))
    keys = {s: create_key(stack.env, s) for s in ("web", "crm", "support")}
    timeline = Timeline()
    outage: dict[str, object] = {}
    # The longer run (make chaos) also sends bigger batches: more volume per second.
    loader = Loader(stack.url(stack.ingest), keys, seed=seed,
                    batch_size=25 if scale == 1 else 50, pause_s=0.05, workers=3)
    try:
        await asyncio.to_thread(stack.start)
        timeline.note("services up")
        try:
            loader.start()
            outage = await _inflict(settings, stack, infra, loader, timeline, rng, scale)
        finally:
            await loader.stop(timeout=120)
            timeline.note("load stopped")
        await _verify(settings, stack, loader, smtp, timeline, outage, seed)
    finally:
        await asyncio.to_thread(stack.stop)


async def _inflict(
    settings: Settings,
    stack: Stack,
    infra: LocalInfra,
    loader: Loader,
    timeline: Timeline,
    rng: random.Random,
    scale: int,
) -> dict[str, object]:
    """The faults, in order, while the loader keeps posting."""
    steady_s = 4.0 * scale
    # Breach the signups minimum and stay under the complaints one.
    await loader.deliver(loader.make(SIGNUP, SIGNUP_MINIMUM // 2))
    await loader.deliver(loader.make(COMPLAINT, 5))
    await _wait_status(settings, "chaos_signups", {"breach"})
    timeline.note("signups breached (FIRING due)")
    for round_ in range(scale):
        for name in ("ingest", "scoring", "alerts"):
            await asyncio.sleep(rng.uniform(0.5, 1.5) * steady_s)
            if round_ == 0 and name == "alerts":
                # Recover the signups KPI, then kill alerts around its RESOLVED notice.
                await loader.deliver(loader.make(SIGNUP, SIGNUP_TARGET))
                await _wait_status(settings, "chaos_signups", {"on_target"})
                await asyncio.sleep(rng.uniform(0, 0.5))
            await _kill_and_restart(stack, name, timeline)
    await asyncio.sleep(steady_s)
    outage = await _kafka_outage(infra, stack, loader, timeline)
    await asyncio.sleep(steady_s)
    # Breach complaints right before Postgres goes away: the FIRING notice has to
    # survive the restart in whichever step (fold, evaluation, alert, delivery) it is.
    await loader.deliver(loader.make(COMPLAINT, COMPLAINT_MINIMUM + 10))
    await _postgres_restart(infra, stack, timeline)
    await asyncio.sleep(steady_s)
    return outage


async def _verify(
    settings: Settings,
    stack: Stack,
    loader: Loader,
    smtp: SmtpRecorder,
    timeline: Timeline,
    outage: dict[str, object],
    seed: int,
) -> None:
    stats = loader.stats
    assert not stats.abandoned_batches, f"{stats.abandoned_batches} batch(es) never accepted"
    assert not stats.unexpected, f"unexpected answers from ingest: {stats.unexpected[:10]}"
    # Clients that retried lost nothing: every generated event was acknowledged.
    assert set(loader.acked) == set(loader.generated)
    expected = checks.Expected.from_events(list(loader.acked.values()), KPI_OF)

    engine = create_engine(settings.database)
    sessions = create_session_factory(engine)
    try:
        topic = settings.kafka.topics().events
        ends = await checks.topic_end(KAFKA, topic)

        async def consumed_all() -> bool:
            stored = await checks.stored_offsets(sessions, settings.scoring.group_id, topic)
            return all(stored.get(p, 0) >= end for p, end in ends.items())

        await checks.eventually(consumed_all, timeout=120, what="scoring consumed the topic")
        timeline.note("scoring consumed every record in the events topic")

        counts, sums = await checks.bucket_totals(sessions)
        for kpi, count in expected.counts.items():
            assert counts.get(kpi, 0) == count, f"{kpi}: counted {counts.get(kpi)}, sent {count}"
        assert sums["chaos_revenue"] == expected.revenue_micros
        # Each acknowledged event counted, and nothing else: the ids scoring claimed.
        processed = await checks.processed_ids(sessions)
        assert processed == set(loader.acked), (
            f"missing {len(set(loader.acked) - processed)}, unknown "
            f"{len(processed - set(loader.acked))}"
        )
        assert loader.retried_ids <= processed  # 503 / refused, re-sent, counted once
        scoring_url = stack.url(stack.scoring)
        for kpi, count in expected.counts.items():
            value = checks.rolling_value(scoring_url, kpi)
            if kpi == "chaos_revenue":
                assert value is not None
                assert math.isclose(value, expected.revenue_micros / 1e6, rel_tol=1e-12)
            else:
                assert value == count, f"{kpi}: value {value}, expected {count}"

        # Notifications: exactly the provoked episodes, each notice delivered.
        async def all_delivered() -> bool:
            rows = await checks.outbox_rows(sessions)
            return len(rows) == len(EXPECTED_MAILS) and all(r.status == "sent" for r in rows)

        await checks.eventually(all_delivered, timeout=120, what="every notice delivered")
        # A notice whose send was interrupted is re-sent after its lease: wait past it.
        await asyncio.sleep(10)
        rows = await checks.outbox_rows(sessions)
        episodes = await checks.alert_episodes(sessions)
    finally:
        await engine.dispose()
    assert sorted(episodes) == [
        ("chaos_complaints", "below_minimum", "firing"),
        ("chaos_signups", "below_minimum", "resolved"),
    ], episodes
    uncertain = sum(r.uncertain_resends for r in rows)
    received: Counter[tuple[str, str]] = Counter()
    for mail in smtp.mails:
        prefix = mail.subject.split("]", 1)[0] + "]"
        for recipient in mail.recipients:
            received[(recipient, prefix)] += 1
    allowed = {
        (r.target, "[FIRING]" if r.kind == "firing" else "[RESOLVED]"): r.uncertain_resends
        for r in rows
    }
    assert set(received) == set(EXPECTED_MAILS), f"mails: {received}, outbox: {rows}"
    for mail_key, copies in EXPECTED_MAILS.items():
        got = received[mail_key]
        assert copies <= got <= copies + allowed.get(mail_key, 0), (
            f"{mail_key}: {got} mail(s), expected {copies} (+{allowed.get(mail_key, 0)} "
            f"uncertain); outbox: {rows}"
        )
    metric = _uncertain_metric(stack.url(stack.alerts))

    summary = {
        "seed": seed,
        **stats.summary(),
        **outage,
        "status_codes": loader.statuses,
        "expected_counts": expected.counts,
        "revenue": str(expected.revenue_micros / 1_000_000),
        "mails": {f"{r} {p}": n for (r, p), n in sorted(received.items())},
        "uncertain_resends_outbox": uncertain,
        "uncertain_metric_since_last_restart": metric,
    }
    SUMMARIES.append("chaos: " + json.dumps(summary, sort_keys=True))
    SUMMARIES.extend(f"  {step}" for step in timeline.steps)


def _uncertain_metric(alerts_url: str) -> float:
    text = httpx.get(f"{alerts_url}/metrics", timeout=10).text
    total = 0.0
    for line in text.splitlines():
        if line.startswith("kpipulse_notifications_uncertain_total"):
            total += float(line.rsplit(" ", 1)[1])
    return total
