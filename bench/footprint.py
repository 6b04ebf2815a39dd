"""The whole stack's footprint at rest: RSS and CPU of Kafka, PostgreSQL and each service.

Kafka is the broker JVM started by ``deploy/local/kafka.sh`` (found by its command
line); PostgreSQL is the postmaster of ``.cache/postgres`` and all its backends, whose
memory is counted as PSS (shared buffers split between the processes that map them,
not counted once per backend). Services run with the example catalog on a private
database and topics. Result: ``.cache/bench/footprint.json``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.common import REPO, BenchStack, cpu_seconds, machine, write_result

PG_DATA = REPO / ".cache" / "postgres" / "data"


def _status(pid: int, field: str, name: str = "status") -> int:
    for line in Path(f"/proc/{pid}/{name}").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    return 0


def rss_bytes(pid: int) -> int:
    return _status(pid, "VmRSS")


def pss_bytes(pid: int) -> int:
    return _status(pid, "Pss", "smaps_rollup")


def children(parent: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat[stat.rindex(")") + 2 :].split()[1]) == parent:
                found.append(int(entry.name))
    return found


def postgres_pids() -> list[int]:
    master = int((PG_DATA / "postmaster.pid").read_text().split()[0])
    return [master, *children(master)]


def kafka_pid() -> int:
    marker = str(REPO / ".cache" / "kafka")
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmd = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            except OSError:
                continue
            if cmd.startswith("java") and marker in cmd and "kafka.Kafka" in cmd:
                return int(entry.name)
    raise RuntimeError("no Kafka broker of this checkout running (deploy/local/infra.sh up)")


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
            with tempfile.NamedTemporaryFile(suffix=".jsonl") as out:
                # The open-loop generator of bench/e2e.py, in its own process: its CPU is
                # reported beside the stack's.
                load = subprocess.Popen(
                    [sys.executable, "-m", "bench.loadgen", url, json.dumps(keys), str(rate),
                     str(seconds + settle + 5), out.name],
                    cwd=REPO, stdout=subprocess.DEVNULL,
                )
                time.sleep(settle)
                found["under_load"] = _window({**groups, "load generator": [load.pid]}, seconds)
                load.wait(timeout=120)
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
