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
import random
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from shared.settings import Settings
from tests.chaos.conftest import SmtpRecorder
from tests.chaos.infra import LocalInfra
from tests.chaos.load import Loader
from tests.chaos.stack import (
    Stack,
    build_stack,
    chaos_settings,
    create_key,
    kpipulse,
)
from tests.chaos.verify import (
    Timeline,
    breach_complaints,
    open_episodes,
    recover_signups,
    verify,
)
from tests.conftest import KAFKA, drop_database

KAFKA_DOWN_S = 20.0


@pytest.fixture
async def single_broker_settings(tmp_path: Path) -> AsyncIterator[Settings]:
    unique = uuid.uuid4().hex[:8]
    yield await chaos_settings(
        tmp_path, unique,
        kafka={"bootstrap_servers": KAFKA, "topic_prefix": f"chaos-{unique}.", "partitions": 3},
    )
    await drop_database(f"kpipulse_chaos_{unique}")


async def _status(url: str) -> tuple[int, dict[str, Any]]:
    try:
        async with httpx.AsyncClient(timeout=15) as client:
            response = await client.get(url)
    except httpx.HTTPError:
        return 0, {}
    body = response.json()
    return response.status_code, body if isinstance(body, dict) else {}


async def _kill_and_restart(stack: Stack, name: str, timeline: Timeline) -> None:
    process = stack.instances(name)[0]
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


@pytest.mark.timeout(3600)
async def test_faults_lose_and_repeat_nothing(
    single_broker_settings: Settings,
    infra: LocalInfra,
    smtp: SmtpRecorder,
    scale: int,
    tmp_path: Path,
) -> None:
    settings = single_broker_settings
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
        await verify(
            settings, KAFKA, (stack.url(stack.scoring), stack.url(stack.alerts)), loader, smtp,
            timeline, outage, seed, "chaos",
        )
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
    await open_episodes(settings, loader, timeline)
    for round_ in range(scale):
        for name in ("ingest", "scoring", "alerts"):
            await asyncio.sleep(rng.uniform(0.5, 1.5) * steady_s)
            if round_ == 0 and name == "alerts":
                # Recover the signups KPI, then kill alerts around its RESOLVED notice.
                await recover_signups(settings, loader)
                await asyncio.sleep(rng.uniform(0, 0.5))
            await _kill_and_restart(stack, name, timeline)
    await asyncio.sleep(steady_s)
    outage = await _kafka_outage(infra, stack, loader, timeline)
    await asyncio.sleep(steady_s)
    # Breach complaints right before Postgres goes away: the FIRING notice has to
    # survive the restart in whichever step (fold, evaluation, alert, delivery) it is.
    await breach_complaints(loader)
    await _postgres_restart(infra, stack, timeline)
    await asyncio.sleep(steady_s)
    return outage
