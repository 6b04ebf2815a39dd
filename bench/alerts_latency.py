"""Alert latency: from the breaching event's acceptance by ingest to the email handed
to an SMTP server, with a hold-down of 0.

The whole stack runs as processes (ingest, scoring, alerts). The catalog is the example
catalog plus a few *probe* KPIs (a sum that goes negative → below its minimum of 0, and
back), one owner address each. Each probe loop posts a breaching event, records when
ingest answered 200 (the acceptance), waits for the ``[FIRING]`` email at the aiosmtpd
server running in this process, posts the recovering event and waits for the
``[RESOLVED]`` email, and goes round again. ``bench.e2e`` runs the same probes while
background load flows. Usage: ``python -m bench.alerts_latency [--seconds 60]``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.parser import BytesHeaderParser
from pathlib import Path
from typing import Any

import httpx
import orjson
import uvloop

from bench.common import REPO, RESULTS, BenchStack, Service, free_port, machine, percentile

TARGET_P99_MS = 2000
PROBE_TEMPLATE = """
- key: bench_probe_{i}
  name: Bench probe {i}
  objective: Measure how fast an owner hears about a breach
  perspective: internal_process
  stage: engage
  department: engineering
  owners: [{{name: Bench probe {i}, email: probe-{i}@bench.example.com}}]
  formula: {{sum: {{source: web, type: bench_probe, field: value, properties: {{probe: p{i}}}}}}}
  window: 1h
  update_every: 1m
  review_period: day
  unit: points
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


def probe_catalog(probes: int) -> Path:
    """The example catalog plus ``probes`` probe KPIs, written under .cache/bench."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / "alerts-catalog.yaml"
    example = (REPO / "catalog" / "example.yaml").read_text()
    path.write_text(example + "".join(PROBE_TEMPLATE.format(i=i) for i in range(probes)))
    return path


@dataclass
class Mail:
    at: float
    to: str
    subject: str


class SmtpSink:
    """aiosmtpd in this process; every message is timestamped when DATA completes."""

    def __init__(self) -> None:
        self.port = free_port()
        self.mails: list[Mail] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._waiters: dict[str, asyncio.Queue[Mail]] = {}

    async def handle_DATA(self, _server: Any, _session: Any, envelope: Any) -> str:
        at = time.time()
        headers = BytesHeaderParser().parsebytes(envelope.original_content or b"")
        for to in envelope.rcpt_tos:
            mail = Mail(at, to, str(headers.get("Subject", "")))
            if self._loop is not None:
                self._loop.call_soon_threadsafe(self._deliver, mail)
        return "250 OK"

    def _deliver(self, mail: Mail) -> None:
        self.mails.append(mail)
        self.queue(mail.to).put_nowait(mail)

    def queue(self, to: str) -> asyncio.Queue[Mail]:
        return self._waiters.setdefault(to, asyncio.Queue())

    def start(self) -> None:
        from aiosmtpd.controller import Controller

        self._loop = asyncio.get_running_loop()
        self._controller = Controller(self, hostname="127.0.0.1", port=self.port)
        self._controller.start()

    def stop(self) -> None:
        self._controller.stop()


@dataclass
class ProbeResults:
    firing_ms: list[float] = field(default_factory=list)  # from ingest's 200
    firing_from_post_ms: list[float] = field(default_factory=list)  # from the POST
    resolved_ms: list[float] = field(default_factory=list)
    timeouts: int = 0
    errors: int = 0


async def _expect(queue: asyncio.Queue[Mail], prefix: str, within_s: float) -> Mail | None:
    deadline = time.monotonic() + within_s
    while (left := deadline - time.monotonic()) > 0:
        try:
            mail = await asyncio.wait_for(queue.get(), left)
        except TimeoutError:
            return None
        if mail.subject.startswith(prefix):
            return mail
    return None


async def run_probes(ingest_url: str, key: str, sink: SmtpSink, probes: int,
                     seconds: float) -> ProbeResults:
    """Breach and recover every probe KPI in turn until ``seconds`` have passed."""
    results = ProbeResults()
    stop_at = time.monotonic() + seconds

    async def post(client: httpx.AsyncClient, probe: int, value: float) -> tuple[float, float]:
        event = {"type": "bench_probe", "value": value, "properties": {"probe": f"p{probe}"},
                 "occurred_at": datetime.now(UTC).isoformat()}
        sent = time.time()
        response = await client.post(ingest_url, content=orjson.dumps(event),
                                     headers={"Authorization": f"Bearer {key}",
                                              "Content-Type": "application/json"})
        if response.status_code != 200:
            raise RuntimeError(f"ingest answered {response.status_code}: {response.text}")
        return sent, time.time()

    async def loop(client: httpx.AsyncClient, probe: int) -> None:
        queue = sink.queue(f"probe-{probe}@bench.example.com")
        try:
            await post(client, probe, 1000)  # start healthy: sum = +1000
            await asyncio.sleep(1.0)
            while time.monotonic() < stop_at:
                sent, accepted = await post(client, probe, -2000)  # sum = -1000: breach
                mail = await _expect(queue, "[FIRING]", 15)
                if mail is None:
                    results.timeouts += 1
                    continue
                results.firing_ms.append((mail.at - accepted) * 1000)
                results.firing_from_post_ms.append((mail.at - sent) * 1000)
                _sent, accepted = await post(client, probe, 2000)  # sum = +1000: recovered
                mail = await _expect(queue, "[RESOLVED]", 15)
                if mail is None:
                    results.timeouts += 1
                    continue
                results.resolved_ms.append((mail.at - accepted) * 1000)
                await asyncio.sleep(0.3)  # let the evaluator's 200 ms re-evaluation pass
        except (httpx.HTTPError, RuntimeError) as exc:
            print(f"probe {probe}: {exc}", file=sys.stderr)
            results.errors += 1

    async with httpx.AsyncClient(timeout=30) as client:
        await asyncio.gather(*(loop(client, p) for p in range(probes)))
    return results


def summarise(results: ProbeResults) -> dict[str, Any]:
    return {
        "episodes": len(results.firing_ms),
        "timeouts": results.timeouts,
        "errors": results.errors,
        "p50_ms": percentile(results.firing_ms, 50),
        "p99_ms": percentile(results.firing_ms, 99),
        "max_ms": max(results.firing_ms, default=float("nan")),
        "p50_from_post_ms": percentile(results.firing_from_post_ms, 50),
        "p99_from_post_ms": percentile(results.firing_from_post_ms, 99),
        "resolved_p50_ms": percentile(results.resolved_ms, 50),
        "resolved_p99_ms": percentile(results.resolved_ms, 99),
    }


def alerts_available(stack: BenchStack) -> bool:
    try:
        stack.kpipulse("alerts", "--help", timeout=60)
    except RuntimeError:
        return False
    return True


def start_stack(stack: BenchStack, sink: SmtpSink, probes: int,
                catalog: Path | None = None) -> dict[str, Service]:
    """ingest, scoring (``catalog``, by default the probe catalog) and alerts (SMTP →
    ``sink``, hold-down 0)."""
    env = {
        "KPIPULSE_SCORING__CATALOG_PATH": str(catalog or probe_catalog(probes)),
        "KPIPULSE_ALERTS__SMTP__HOST": "127.0.0.1",
        "KPIPULSE_ALERTS__SMTP__PORT": str(sink.port),
        "KPIPULSE_ALERTS__HOLD_DOWN_S": "0",
        "KPIPULSE_ALERTS__DIGEST__ENABLED": "false",  # only alert mails reach the sink
    }
    services = {
        "ingest": stack.service("ingest", port_setting="KPIPULSE_INGEST__HTTP__PORT", env=env),
        "scoring": stack.service("scoring", port_setting="KPIPULSE_SCORING__HTTP__PORT", env=env),
        "alerts": stack.service("alerts", port_setting="KPIPULSE_ALERTS__HTTP__PORT", env=env),
    }
    for svc in services.values():
        svc.start()
    for svc in services.values():
        svc.wait_healthy(90)
    return services


async def run(args: argparse.Namespace) -> dict[str, Any]:
    with BenchStack("alerts") as stack:
        if not alerts_available(stack):
            return {"skipped": "`kpipulse alerts` does not run yet"}
        key = stack.write_key("web")
        sink = SmtpSink()
        sink.start()
        try:
            services = start_stack(stack, sink, args.probes)
            await asyncio.sleep(3)  # consumers joined their groups
            url = f"http://127.0.0.1:{services['ingest'].port}/v1/events"
            results = await run_probes(url, key, sink, args.probes, args.seconds)
        finally:
            with contextlib.suppress(Exception):
                sink.stop()
    summary = summarise(results)
    return {
        "machine": machine(),
        "settings": {"probes": args.probes, "seconds": args.seconds, "hold_down_s": 0,
                     "background_load": "none"},
        **summary,
        "target_p99_ms": TARGET_P99_MS,
        "met": {"p99_ms": summary["p99_ms"] <= TARGET_P99_MS},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--probes", type=int, default=4)
    args = parser.parse_args()
    from bench.common import write_result

    result = uvloop.run(run(args))
    path = write_result("alerts_latency", result)
    if "skipped" in result:
        print(f"skipped: {result['skipped']}")
        return
    print(f"{result['episodes']} alert episodes: p50 {result['p50_ms']:.0f} ms, "
          f"p99 {result['p99_ms']:.0f} ms from ingest's 200 to the email at the SMTP server "
          f"(target ≤ {TARGET_P99_MS}); timeouts {result['timeouts']}\nwritten to {path}")


if __name__ == "__main__":
    main()
