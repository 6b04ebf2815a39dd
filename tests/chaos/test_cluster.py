"""Beyond one machine: a broker and one instance of each consumer killed under load.

Three Kafka nodes on loopback (``deploy/local/kafka-cluster.sh``), topics with
replication 3 and ``min.insync.replicas`` 2, as in production. Ingest, two scoring and two
alerts instances run as processes; a client keeps posting and re-sends a batch until it is
acknowledged. Under that load: one broker is ``kill -9``-ed (ingest must keep
acknowledging: acks=all is met by the two replicas left), then one scoring and one alerts
instance are ``kill -9``-ed and stay dead (their partitions move to the survivors, while
an alert episode starts and one ends), then the broker comes back. Afterwards the values
must equal a computation from the acknowledged events alone and each provoked alert must
have been mailed once (extra copies only as counted "uncertain" resends).
"""

from __future__ import annotations

import asyncio
import random
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from shared.settings import Settings
from tests.chaos.conftest import SmtpRecorder
from tests.chaos.infra import KafkaCluster
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
from tests.conftest import drop_database

REPLICATION, MIN_IN_SYNC = 3, 2


@pytest.fixture
async def cluster_settings(tmp_path: Path, cluster: KafkaCluster) -> AsyncIterator[Settings]:
    unique = uuid.uuid4().hex[:8]
    settings = await chaos_settings(
        tmp_path, unique,
        kafka={
            "bootstrap_servers": cluster.bootstrap,
            "topic_prefix": f"cluster-{unique}.",
            # More partitions than instances, so each instance holds some to lose.
            "partitions": 6,
            "replication_factor": REPLICATION,
            "min_insync_replicas": MIN_IN_SYNC,
        },
    )
    yield settings
    await drop_database(f"kpipulse_chaos_{unique}")


@pytest.mark.timeout(3600)
async def test_broker_and_instances_killed_under_load(
    cluster_settings: Settings,
    cluster: KafkaCluster,
    smtp: SmtpRecorder,
    scale: int,
    tmp_path: Path,
) -> None:
    settings = cluster_settings
    seed = random.randrange(1_000_000)
    rng = random.Random(seed)
    stack = build_stack(settings, smtp.port, tmp_path, scorers=2, alerters=2)
    created = kpipulse(stack.env, "topics", "create", "--timeout", "120").splitlines()
    layout = f"replication factor {REPLICATION}, min.insync.replicas {MIN_IN_SYNC})"
    assert len(created) == 3 and all(line.endswith(layout) for line in created), created
    kpipulse(stack.env, "catalog", "apply", str(settings.scoring.catalog_path))
    keys = {s: create_key(stack.env, s) for s in ("web", "crm", "support")}
    timeline = Timeline()
    loader = Loader(stack.url(stack.ingest), keys, seed=seed, batch_size=25, pause_s=0.05,
                    workers=3)
    try:
        await asyncio.to_thread(stack.start)
        timeline.note("ingest, 2 scoring and 2 alerts instances up")
        try:
            loader.start()
            extra = await _inflict(settings, stack, cluster, loader, timeline, rng, scale)
        finally:
            await loader.stop(timeout=120)
            timeline.note("load stopped")
        scoring = next(p for p in stack.instances("scoring") if p.proc and p.proc.poll() is None)
        alerts = next(p for p in stack.instances("alerts") if p.proc and p.proc.poll() is None)
        await verify(
            settings, settings.kafka.bootstrap_servers, (stack.url(scoring), stack.url(alerts)),
            loader, smtp, timeline, extra, seed, "cluster",
        )
    finally:
        await asyncio.to_thread(stack.stop)


async def _inflict(
    settings: Settings,
    stack: Stack,
    cluster: KafkaCluster,
    loader: Loader,
    timeline: Timeline,
    rng: random.Random,
    scale: int,
) -> dict[str, object]:
    """The faults, in order, while the loader keeps posting."""
    steady_s = 3.0 * scale
    await open_episodes(settings, loader, timeline)
    await asyncio.sleep(steady_s)

    broker = rng.choice((1, 2, 3))
    refused_before = loader.stats.status_503
    await asyncio.to_thread(cluster.kill, broker)
    timeline.note(f"kill -9 kafka node {broker}")
    # Two replicas of three stay in sync: acks=all writes go on after the leader moves.
    assert await loader.acked_progress(60), "nothing acknowledged with one broker down"
    timeline.note("events acknowledged with one broker down")
    await asyncio.sleep(rng.uniform(0.5, 1.5) * steady_s)

    scorer = rng.choice(stack.instances("scoring"))
    await asyncio.to_thread(scorer.kill9)
    timeline.note(f"kill -9 {scorer.log_path.stem}, left dead")
    await asyncio.sleep(rng.uniform(0.5, 1.5) * steady_s)

    # The signups KPI recovers; an alerts instance dies around its RESOLVED notice.
    await recover_signups(settings, loader)
    await asyncio.sleep(rng.uniform(0, 0.5))
    alerter = rng.choice(stack.instances("alerts"))
    await asyncio.to_thread(alerter.kill9)
    timeline.note(f"kill -9 {alerter.log_path.stem}, left dead")
    await asyncio.sleep(steady_s)

    # Complaints breach while the cluster is still one broker short.
    await breach_complaints(loader)
    await asyncio.sleep(steady_s)
    refused_while_down = loader.stats.status_503 - refused_before
    restart_s = await asyncio.to_thread(cluster.start_node, broker)
    timeline.note(f"kafka node {broker} started again ({restart_s:.1f} s)")
    await asyncio.sleep(steady_s)
    return {
        "broker_killed": broker,
        "scoring_killed": scorer.log_path.stem,
        "alerts_killed": alerter.log_path.stem,
        "503_while_broker_down": refused_while_down,
    }
