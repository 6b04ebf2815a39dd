"""Who used the CPU during a measurement window: the harness, each service, Kafka,
PostgreSQL, and the rest of the (shared) machine.

Each figure is CPU seconds over the window's wall seconds, as a percentage of one core
(the machine's total can reach 100 times its cores). "others" is the machine's busy time
minus everything named here: another session's tests show up there.
"""

from __future__ import annotations

import contextlib
import os
import resource
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from bench.common import cpu_seconds
from bench.procs import children, kafka_pid, postmaster_pid

_TICK = os.sysconf("SC_CLK_TCK")


def machine_busy_s() -> float:
    """CPU seconds the whole machine spent not idle since boot (all cores)."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    return (sum(fields[:8]) - idle) / _TICK


def listen_overflows() -> int:
    """Connections the kernel dropped because a listening socket's accept queue was
    full, machine-wide since boot: what an overloaded server looks like to its clients
    (resets and retried SYNs rather than slow answers)."""
    lines = Path("/proc/net/netstat").read_text().splitlines()
    for names, values in zip(lines[::2], lines[1::2], strict=False):
        if names.startswith("TcpExt:"):
            return int(dict(zip(names.split(), values.split(), strict=True))["ListenOverflows"])
    return 0


@dataclass
class Snapshot:
    at: float
    bench: float
    machine: float
    named: dict[str, float]
    postgres: dict[int, float] = field(default_factory=dict)


class StackCpu:
    """Takes snapshots of the processes named at construction (name → pid) and of
    PostgreSQL's postmaster and backends, found afresh at every snapshot."""

    def __init__(self, pids: Mapping[str, int]) -> None:
        self.pids = dict(pids)
        with contextlib.suppress(RuntimeError):
            self.pids["kafka"] = kafka_pid()
        self.postmaster = postmaster_pid()

    def snapshot(self) -> Snapshot:
        own = resource.getrusage(resource.RUSAGE_SELF)
        named = {}
        for name, pid in self.pids.items():
            with contextlib.suppress(OSError):
                named[name] = cpu_seconds(pid)
        postgres = {}
        for pid in [self.postmaster, *children(self.postmaster)]:
            with contextlib.suppress(OSError):  # a backend that just ended
                postgres[pid] = cpu_seconds(pid)
        return Snapshot(time.monotonic(), own.ru_utime + own.ru_stime, machine_busy_s(),
                        named, postgres)


def shares(before: Snapshot, after: Snapshot, extra: Mapping[str, float]) -> dict[str, float]:
    """% of a core per process over the window; ``extra`` adds CPU seconds measured
    otherwise (vegeta's, from its rusage). A backend that ended within the window is
    lost from PostgreSQL's figure, and so lands in "others"."""
    wall = after.at - before.at
    used = {name: after.named[name] - before.named.get(name, 0.0)
            for name in after.named}
    used["postgres"] = sum(cpu - before.postgres.get(pid, 0.0)
                           for pid, cpu in after.postgres.items())
    used["bench"] = after.bench - before.bench
    used.update(extra)
    used["others"] = max(0.0, after.machine - before.machine - sum(used.values()))
    used["machine"] = after.machine - before.machine
    return {name: round(100 * cpu / wall, 1) for name, cpu in used.items()}
