"""vegeta, the open-loop HTTP load generator (Go), driven from Python.

vegeta sends each request at its due time whatever happened to earlier ones, so a slow
answer never delays the next request (no coordinated omission), and it spends a small
fraction of the CPU a Python generator would. It cannot template a request, so every
request is written out beforehand as a JSON target (base64 body, its own event id, so
nothing is deduplicated); ``write_targets`` writes at least as many as the attack sends,
because vegeta would start over at the first target once they run out.
``deploy/local/tools.sh vegeta`` builds the pinned version into ``.cache/tools/bin``.
"""

from __future__ import annotations

import base64
import math
import os
import re
import subprocess
import time
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from bench.common import REPO, percentile
from bench.events import Event

CACHE = Path(os.environ.get("KPIPULSE_CACHE_DIR", REPO / ".cache"))
VEGETA = CACHE / "tools" / "bin" / "vegeta"
# A request unanswered after this long is an error: the usual SDK timeout (Segment's
# libraries use 10 s), and it bounds how long an overloaded step drags on.
TIMEOUT_S = 10


def version() -> str:
    """The module version Go recorded in the binary (``vegeta -version`` is blank for a
    ``go install`` build)."""
    found = re.search(rb"\tgithub.com/tsenart/vegeta/v12\t(v[0-9A-Za-z.+-]+)",
                      VEGETA.read_bytes())
    return found.group(1).decode() if found else "unknown"


def needed_targets(rate: float, seconds: float) -> int:
    """Distinct requests enough for an attack of ``rate``/s for ``seconds``, with a
    second to spare (never fewer than it sends, whatever its rounding)."""
    return math.ceil(rate * (seconds + 1))


def target_lines(url: str, keys: Mapping[str, str], events: Iterable[Event],
                 count: int) -> Iterable[bytes]:
    """``count`` vegeta JSON targets, one event each, with fresh ids and ``occurred_at``
    now; ``events`` is cycled through for the rest of each event and its source's key."""
    made = 0
    pool = list(events)
    now = datetime.now(UTC).isoformat()
    while made < count:
        for event in pool:
            if made == count:
                return
            body = {**event, "event_id": uuid.uuid4().hex, "occurred_at": now}
            yield orjson.dumps({
                "method": "POST",
                "url": url,
                "body": base64.b64encode(orjson.dumps(body)).decode(),
                "header": {"Authorization": [f"Bearer {keys[event['source']]}"],
                           "Content-Type": ["application/json"]},
            })
            made += 1


def write_targets(path: Path, url: str, keys: Mapping[str, str], events: Iterable[Event],
                  count: int) -> int:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as out:
        written = 0
        for line in target_lines(url, keys, events, count):
            out.write(line + b"\n")
            written += 1
    return written


@dataclass
class Attack:
    """A running ``vegeta attack``; ``cpu_s`` is known once it has ended."""

    proc: subprocess.Popen[bytes]
    results: Path
    started: float
    ended: float = float("nan")
    cpu_s: float = float("nan")

    def wait(self) -> None:
        """Reap the process with wait4, whose rusage is exactly vegeta's own CPU time
        (every thread), which /proc can no longer tell once the process is gone."""
        _pid, status, usage = os.wait4(self.proc.pid, 0)
        self.ended = time.monotonic()
        self.proc.returncode = os.waitstatus_to_exitcode(status)
        self.cpu_s = usage.ru_utime + usage.ru_stime
        if self.proc.returncode != 0:
            raise RuntimeError(f"vegeta attack exited with {self.proc.returncode}")


def attack(targets: Path, rate: float, seconds: float, results: Path) -> Attack:
    argv = [str(VEGETA), "attack", "-format=json", f"-targets={targets}",
            f"-rate={rate:g}/1s", f"-duration={seconds:g}s", f"-timeout={TIMEOUT_S}s",
            f"-output={results}"]
    with results.with_suffix(".log").open("wb") as log:
        proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=log)
    return Attack(proc, results, time.monotonic())


def summarise(results: Path) -> dict[str, Any]:
    """vegeta's own report (success ratio, status codes, errors), and POST→200
    percentiles over the answered-200 requests alone (from ``vegeta encode``)."""
    report = orjson.loads(subprocess.run(
        [str(VEGETA), "report", "-type=json", str(results)],
        capture_output=True, check=True).stdout)
    encoded = subprocess.run([str(VEGETA), "encode", "-to=json", str(results)],
                             capture_output=True, check=True).stdout
    ok = sorted(
        hit["latency"] / 1e6 for hit in map(orjson.loads, encoded.splitlines())
        if hit["code"] == 200
    )
    return {
        "requests": report["requests"],
        "sent_rate": report["rate"],  # requests/s over the attack's duration
        "ok_rate": report["throughput"],  # answered 2xx per second, the tail included
        "attack_s": report["duration"] / 1e9,
        "tail_s": report["wait"] / 1e9,  # waiting for the last answers
        "success_ratio": report["success"],
        "status_codes": report["status_codes"],
        "errors": report.get("errors") or [],
        "post_200_ms": {
            "n": len(ok),
            "p50": percentile(ok, 50), "p90": percentile(ok, 90),
            "p99": percentile(ok, 99), "max": ok[-1] if ok else float("nan"),
        },
        # vegeta's own figures over every request (errors included), for comparison.
        "vegeta_latencies_ms": {k: v / 1e6 for k, v in report["latencies"].items()},
    }
