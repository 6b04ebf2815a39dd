"""End-to-end latency against the whole stack as processes, at fixed offered rates.

ingest, scoring and alerts run as ``kpipulse`` processes on a private prefix and
database; a constant-rate load generator (``bench.loadgen``, its own process, open
loop) posts generator events at each offered rate. This process learns every event's
partition and offset by reading the events topic (the key is the event id) and polls
``consumer_offsets`` every 10 ms, which gives, per event, POST → KPI value committed
(folded and its offset committed in Postgres). While the load flows, the alert probes
of ``bench.alerts_latency`` measure POST accepted → email at the SMTP server.
The offered rates are fractions of the pipeline's maximum, taken as the smaller of the
ingest and scorer wall-clock rates measured by ``bench.ingest``/``bench.scoring`` in
this run (``--max-rate`` overrides). Usage: ``python -m bench.e2e [--seconds 20]``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import subprocess
import sys
from typing import Any

import orjson
import uvloop
from aiokafka import AIOKafkaConsumer

from bench.alerts_latency import SmtpSink, alerts_available, run_probes, start_stack, summarise
from bench.common import (
    KAFKA,
    RESULTS,
    BenchStack,
    machine,
    percentile,
    read_result,
    write_result,
)
from bench.tracker import CommitTracker

FRACTIONS = (0.1, 0.25, 0.5)
DEFAULT_MAX = 4000.0
PROBES = 3


def pipeline_max() -> tuple[float, str]:
    ingest, scoring = read_result("ingest"), read_result("scoring")
    candidates = []
    if ingest is not None:
        candidates.append((ingest["batch"]["ingest"]["events_per_s"], "ingest batched events/s"))
    if scoring is not None:
        candidates.append((scoring["figures"]["max_rate"], "scorer catch-up events/s"))
    if not candidates:
        return DEFAULT_MAX, "default (no ingest/scoring result yet)"
    return min(candidates)


class OffsetIndex:
    """event id → (partition, offset), from reading the events topic."""

    def __init__(self, topic: str) -> None:
        self.topic = topic
        self.where: dict[bytes, tuple[int, int]] = {}
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._consumer = AIOKafkaConsumer(
            self.topic, bootstrap_servers=KAFKA, auto_offset_reset="earliest",
            enable_auto_commit=False, group_id=None,
        )
        await self._consumer.start()
        self._task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        while True:
            batches = await self._consumer.getmany(timeout_ms=100, max_records=10_000)
            for records in batches.values():
                for record in records:
                    self.where[record.key] = (record.partition, record.offset)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        with contextlib.suppress(asyncio.CancelledError):
            await self._consumer.stop()


async def one_rate(rate: float, seconds: float, url: str, keys: dict[str, str],
                   index: OffsetIndex, tracker: CommitTracker, sink: SmtpSink | None,
                   probe_key: str) -> dict[str, Any]:
    out = RESULTS / f"e2e-requests-{int(rate)}.jsonl"
    gen = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bench.loadgen", url, orjson.dumps(keys).decode(), str(rate),
        str(seconds), str(out), stdout=subprocess.DEVNULL,
    )
    probe_task = (
        asyncio.create_task(run_probes(url, probe_key, sink, PROBES, seconds))
        if sink is not None else None
    )
    await gen.wait()
    alerts = summarise(await probe_task) if probe_task is not None else None
    log = [orjson.loads(line) for line in out.read_bytes().splitlines() if line]
    accepted = [entry for entry in log if entry["status"] == 200]
    ids = [(entry["sent"], eid.encode()) for entry in accepted for eid in entry["ids"]]
    # Wait until every accepted event is indexed and committed (or give up).
    targets: dict[int, int] = {}
    for _ in range(600):
        if all(eid in index.where for _, eid in ids):
            break
        await asyncio.sleep(0.1)
    for _, eid in ids:
        spot = index.where.get(eid)
        if spot is not None:
            targets[spot[0]] = max(targets.get(spot[0], 0), spot[1] + 1)
    drained = await tracker.wait_for(targets, within_s=120)
    committed: list[float] = []
    missing = 0
    for sent, eid in ids:
        spot = index.where.get(eid)
        at = tracker.commit_time(*spot) if spot is not None else None
        if at is None:
            missing += 1
        else:
            committed.append((at - sent) * 1000)
    acks = [(entry["done"] - entry["sent"]) * 1000 for entry in accepted]
    return {
        "offered_rate": rate,
        "events": len(ids),
        "requests": len(log),
        "non_200": len(log) - len(accepted),
        "drained": drained,
        "missing": missing,
        "ack_p50_ms": percentile(acks, 50),
        "ack_p99_ms": percentile(acks, 99),
        "committed_p50_ms": percentile(committed, 50),
        "committed_p99_ms": percentile(committed, 99),
        "alerts": alerts,
    }


async def run(args: argparse.Namespace) -> dict[str, Any]:
    max_rate, basis = (args.max_rate, "given") if args.max_rate else pipeline_max()
    points = []
    with BenchStack("e2e") as stack:
        has_alerts = alerts_available(stack)
        keys = {src: stack.write_key(src) for src in ("web", "crm", "email", "support")}
        probe_key = stack.write_key("web")
        sink = SmtpSink()
        sink.start()
        index = OffsetIndex(stack.topics["events"])
        tracker = CommitTracker(stack.dsn, consumer=stack.scoring_group,
                                topic=stack.topics["events"])
        try:
            if has_alerts:
                services = start_stack(stack, sink, PROBES)
            else:
                services = {
                    "ingest": stack.service("ingest", port_setting="KPIPULSE_INGEST__HTTP__PORT"),
                    "scoring": stack.service("scoring",
                                             port_setting="KPIPULSE_SCORING__HTTP__PORT"),
                }
                for svc in services.values():
                    svc.start()
                for svc in services.values():
                    svc.wait_healthy(90)
            await index.start()
            await tracker.start()
            await asyncio.sleep(3)
            url = f"http://127.0.0.1:{services['ingest'].port}/v1/events"
            for fraction in FRACTIONS:
                rate = max(20.0, round(max_rate * fraction, -1))
                print(f"offered {rate:,.0f} events/s ({fraction:.0%} of {max_rate:,.0f}) …",
                      flush=True)
                point = await one_rate(rate, args.seconds, url, keys, index, tracker,
                                       sink if has_alerts else None, probe_key)
                point["fraction_of_max"] = fraction
                points.append(point)
                alert = point["alerts"] or {}
                print(f"  POST→committed p50 {point['committed_p50_ms']:.0f} ms, p99 "
                      f"{point['committed_p99_ms']:.0f} ms; alert p99 "
                      f"{alert.get('p99_ms', float('nan')):.0f} ms", flush=True)
        finally:
            await index.stop()
            with contextlib.suppress(Exception):
                await tracker.stop()
            sink.stop()
    return {
        "machine": machine(),
        "settings": {"seconds": args.seconds, "max_rate": max_rate, "max_basis": basis,
                     "alerts": has_alerts, "probes": PROBES if has_alerts else 0,
                     "tick_ms": 10, "poll_interval_ms": 10},
        "points": points,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--max-rate", type=float, default=0.0)
    args = parser.parse_args()
    result = uvloop.run(run(args))
    path = write_result("e2e", result)
    print(f"written to {path}")


if __name__ == "__main__":
    main()
