"""End to end against the whole stack as processes: POST→200 and POST→KPI value visible,
at offered rates of single-event requests, with the harness's own CPU beside every figure.

ingest, scoring and alerts run as ``kpipulse`` processes on a private prefix and
database (``bench.alerts_latency.start_stack``). For each offered rate, vegeta (Go, open
loop, ``bench.vegeta``) posts that many single-event requests per second for
``--seconds``, each a generator event with its own id; POST→200 comes from vegeta's own
results. Meanwhile this process posts a sparse *probe* event (one every 0.5-1 s after
the previous one became visible) counted by a probe KPI refreshed every second, and
polls that KPI's detail (``GET /v1/kpis/{key}``, every 50 ms, only while a probe is
outstanding) until its value counts the probe: POST sent → value visible. A step with no
load ("idle") comes first. CPU of vegeta, of this process, of each service, Kafka and
PostgreSQL, and of the rest of the machine is measured over each step's window
(``bench.stack_cpu``). Usage: ``python -m bench.e2e [--seconds 20] [--rates 100,1000,5000]``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import random
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx
import orjson
import uvloop

from bench import vegeta
from bench.alerts_latency import SmtpSink, start_stack
from bench.common import REPO, RESULTS, BenchStack, machine, percentile, write_result
from bench.events import generated
from bench.stack_cpu import StackCpu, listen_overflows, shares

PROBE_KEY = "bench_visible"
PROBE_KPI = f"""
- key: {PROBE_KEY}
  name: Bench visibility probe
  objective: Measure how soon a posted event shows in its KPI's value
  perspective: internal_process
  stage: engage
  department: engineering
  owners: [{{name: Bench probe, email: visible@bench.example.com}}]
  formula: {{count: {{source: web, type: bench_visible}}}}
  window: 1h
  update_every: 1s
  review_period: day
  unit: events
  direction: higher_is_better
  minimum: 0
  target: 100
  weight: 1
  expires_on: 2030-12-31
  indicator: lagging
  tracking_cost: {{amount: 0, currency: USD, per: month}}
  data_collection: benchmark probe events
  viewers: [engineering]
  require_full_window: false
"""
POLL_S = 0.05
PROBE_GAP_S = (0.5, 1.0)
VISIBLE_WITHIN_S = 30.0
SETTLE_S = 5.0


@dataclass
class Prober:
    """One probe outstanding at a time; every probe is kept with its POST time."""

    ingest_url: str
    kpi_url: str
    write_key: str
    admin_token: str
    posted: int = 0
    seen: list[tuple[float, float]] = field(default_factory=list)  # (sent, latency ms)
    lost: list[float] = field(default_factory=list)  # sent times never seen in time
    errors: int = 0

    async def run(self, stop: asyncio.Event) -> None:
        async with httpx.AsyncClient(timeout=30) as client:
            while not stop.is_set():
                try:
                    await self._one(client)
                except httpx.HTTPError:
                    self.errors += 1
                # A random gap puts probes at every phase of the KPI's one-second refresh.
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), random.uniform(*PROBE_GAP_S))

    async def _one(self, client: httpx.AsyncClient) -> None:
        event = {"event_id": uuid.uuid4().hex, "type": "bench_visible",
                 "occurred_at": datetime.now(UTC).isoformat()}
        sent = time.time()
        answer = await client.post(self.ingest_url, content=orjson.dumps(event), headers={
            "Authorization": f"Bearer {self.write_key}", "Content-Type": "application/json"})
        if answer.status_code != 200:
            self.errors += 1
            return
        self.posted += 1
        auth = {"Authorization": f"Bearer {self.admin_token}"}
        deadline = sent + VISIBLE_WITHIN_S
        while time.time() < deadline:
            value = (await client.get(self.kpi_url, headers=auth)).json()["kpi"]["value"]
            if value is not None and value >= self.posted:
                self.seen.append((sent, (time.time() - sent) * 1000))
                return
            await asyncio.sleep(POLL_S)
        self.lost.append(sent)

    def between(self, start: float, end: float) -> dict[str, Any]:
        ms = [lat for sent, lat in self.seen if start <= sent < end]
        return {"n": len(ms), "lost": sum(start <= s < end for s in self.lost),
                "p50": percentile(ms, 50), "p90": percentile(ms, 90),
                "p99": percentile(ms, 99), "max": max(ms, default=float("nan")),
                "samples": [round(x) for x in ms]}


async def one_step(rate: float, seconds: float, url: str, keys: dict[str, str],
                   prober: Prober, cpu: StackCpu) -> dict[str, Any]:
    point: dict[str, Any] = {"offered_rate": rate, "seconds": seconds}
    targets = RESULTS / "e2e-targets.jsonl"
    if rate > 0:
        needed = vegeta.needed_targets(rate, seconds)
        events = generated(5000, seed=13)
        written = await asyncio.to_thread(vegeta.write_targets, targets, url, keys, events,
                                          needed)
        if written < needed:
            raise RuntimeError(f"{written} targets for {needed} requests: ids would repeat")
        point["targets"] = written
    load_before = os.getloadavg()
    overflows = listen_overflows()
    before, wall_start = cpu.snapshot(), time.time()
    extra: dict[str, float] = {}
    if rate > 0:
        results = RESULTS / f"e2e-{int(rate)}.bin"
        attack = vegeta.attack(targets, rate, seconds, results)
        await asyncio.to_thread(attack.wait)
        extra["vegeta"] = attack.cpu_s
    else:
        await asyncio.sleep(seconds)
    after, wall_end = cpu.snapshot(), time.time()
    point["window_s"] = round(after.at - before.at, 2)
    point["listen_overflows"] = listen_overflows() - overflows
    point["load_average"] = {"before": [round(x, 2) for x in load_before],
                             "after": [round(x, 2) for x in os.getloadavg()]}
    point["cpu_pct_of_core"] = shares(before, after, extra)
    point["visible_ms"] = prober.between(wall_start, wall_end)
    if rate > 0:
        point.update(await asyncio.to_thread(vegeta.summarise, results))
        if point["requests"] > point["targets"]:
            raise RuntimeError("vegeta ran out of targets and repeated some")
    return point


def _show(p: dict[str, Any]) -> str:
    v, c = p["visible_ms"], p["cpu_pct_of_core"]
    ack = p.get("post_200_ms")
    head = (f"POST→200 p50 {ack['p50']:.1f} p99 {ack['p99']:.1f} ms, ok "
            f"{p['success_ratio']:.3f}; " if ack else "")
    harness = c.get("vegeta", 0.0) + c["bench"]
    return (f"  {head}visible p50 {v['p50']:.0f} p90 {v['p90']:.0f} p99 {v['p99']:.0f} ms "
            f"(n {v['n']}, lost {v['lost']}); harness {harness:.1f} %, ingest "
            f"{c.get('ingest', 0):.1f} %, scoring {c.get('scoring', 0):.1f} %, others "
            f"{c['others']:.1f} %; load {p['load_average']['after'][0]}")


async def run(args: argparse.Namespace) -> dict[str, Any]:
    catalog = RESULTS / "e2e-catalog.yaml"
    RESULTS.mkdir(parents=True, exist_ok=True)
    catalog.write_text((REPO / "catalog" / "example.yaml").read_text() + PROBE_KPI)
    points = []
    with BenchStack("e2e") as stack:
        keys = {src: stack.write_key(src) for src in ("web", "crm", "email", "support")}
        sink = SmtpSink()  # the example catalog's owners get their alert mails here
        sink.start()
        stop = asyncio.Event()
        try:
            services = start_stack(stack, sink, 0, catalog)
            url = f"http://127.0.0.1:{services['ingest'].port}/v1/events"
            prober = Prober(url, f"http://127.0.0.1:{services['scoring'].port}/v1/kpis/"
                            f"{PROBE_KEY}", keys["web"], stack.admin_token)
            probing = asyncio.create_task(prober.run(stop))
            cpu = StackCpu({name: svc.pid for name, svc in services.items()})
            await asyncio.sleep(SETTLE_S)  # consumers joined, the first probe seen
            for rate in [0.0, *args.rates]:
                print(f"offered {rate:,.0f} events/s for {args.seconds:g} s …", flush=True)
                points.append(await one_step(rate, args.seconds, url, keys, prober, cpu))
                print(_show(points[-1]), flush=True)
                await asyncio.sleep(SETTLE_S)
            stop.set()
            await probing
        finally:
            stop.set()
            sink.stop()
    return {
        "machine": machine(),
        "settings": {"seconds": args.seconds, "rates": args.rates, "generator": "vegeta "
                     f"{vegeta.version()} (open loop, single-event requests, unique ids)",
                     "poll_ms": POLL_S * 1000, "probe_gap_s": list(PROBE_GAP_S),
                     "probe_update_every_s": 1, "visible_within_s": VISIBLE_WITHIN_S},
        "points": points,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--rates", type=lambda s: [float(x) for x in s.split(",")],
                        default=[100.0, 1000.0, 5000.0])
    args = parser.parse_args()
    if not vegeta.VEGETA.exists():
        raise SystemExit(f"no {vegeta.VEGETA}: run deploy/local/tools.sh vegeta")
    result = uvloop.run(run(args))
    print(f"written to {write_result('e2e', result)}")


if __name__ == "__main__":
    main()
