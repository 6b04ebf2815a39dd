"""The whole stack's footprint at rest: RSS and CPU of Kafka, PostgreSQL and each service.

Kafka is the broker JVM started by ``deploy/local/kafka.sh``; PostgreSQL is the
postmaster of the server the benchmark uses and all its backends, whose memory is
counted as PSS (shared buffers split between the processes that map them, not counted
once per backend). The load is vegeta's (``bench/vegeta.py``), single-event requests.
Services run with the example catalog on a private database and topics. Result:
``.cache/bench/footprint.json``.
"""

from __future__ import annotations

import argparse
import contextlib
import tempfile
import time
from pathlib import Path
from typing import Any

from bench import vegeta
from bench.common import BenchStack, cpu_seconds, machine, write_result
from bench.events import generated
from bench.procs import kafka_pid, postgres_pids, pss_bytes


def _group_cpu(pids: list[int]) -> float:
    total = 0.0
    for pid in pids:
        with contextlib.suppress(OSError):  # a backend that ended
            total += cpu_seconds(pid)
    return total


def _group_memory(pids: list[int]) -> int:
    total = 0
    for pid in pids:
        with contextlib.suppress(OSError):
            total += pss_bytes(pid)
    return total


def _window(groups: dict[str, list[int]], seconds: float) -> dict[str, Any]:
    """CPU share and memory of each group of processes over ``seconds`` from now."""
    before = {name: _group_cpu(pids) for name, pids in groups.items()}
    t0 = time.monotonic()
    time.sleep(seconds)
    elapsed = time.monotonic() - t0
    # Backends that started during the window are counted from zero: include them.
    groups["postgres"] = sorted(set(groups["postgres"]) | set(postgres_pids()))
    return {
        name: {
            "cpu_share": (_group_cpu(pids) - before.get(name, 0.0)) / elapsed,
            "memory_bytes": _group_memory(pids),
            "processes": len(pids),
        }
        for name, pids in groups.items()
    }


def measure(seconds: float, settle: float, rate: float) -> dict[str, Any]:
    with BenchStack("footprint") as stack:
        services = {
            name: stack.service(name, port_setting=f"KPIPULSE_{name.upper()}__HTTP__PORT")
            for name in ("ingest", "scoring", "alerts")
        }
        for svc in services.values():
            svc.start()
        for svc in services.values():
            svc.wait_healthy(timeout=120)
        time.sleep(settle)
        groups = {
            "kafka": [kafka_pid()],
            "postgres": postgres_pids(),
            **{name: [svc.pid] for name, svc in services.items()},
        }
        found: dict[str, Any] = {"at_rest": _window(dict(groups), seconds)}
        if rate > 0:
            keys = {src: stack.write_key(src) for src in ("web", "crm", "email", "support")}
            url = f"http://127.0.0.1:{services['ingest'].port}/v1/events"
            with tempfile.TemporaryDirectory() as tmp:
                # vegeta, open loop, in its own process: its CPU is reported beside the
                # stack's.
                duration = seconds + settle + 5
                targets, results = Path(tmp) / "targets.jsonl", Path(tmp) / "results.bin"
                vegeta.write_targets(targets, url, keys, generated(5000, seed=17),
                                     vegeta.needed_targets(rate, duration))
                load = vegeta.attack(targets, rate, duration, results)
                time.sleep(settle)
                found["under_load"] = _window(
                    {**groups, "load generator": [load.proc.pid]}, seconds
                )
                load.wait()
                answered = vegeta.summarise(results)
                found["load"] = {
                    "generator": f"vegeta {vegeta.version()}",
                    "success_ratio": answered["success_ratio"],
                    "post_200_ms": answered["post_200_ms"],
                }
        return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--settle", type=float, default=15.0)
    parser.add_argument("--rate", type=float, default=1000.0, help="events/s; 0: at rest only")
    args = parser.parse_args()
    found = measure(args.seconds, args.settle, args.rate)
    print(found, flush=True)
    write_result("footprint", {"machine": machine(), "settings": vars(args), **found})


if __name__ == "__main__":
    main()
