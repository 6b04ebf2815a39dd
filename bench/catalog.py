"""How scoring's costs grow with the catalog: 10, 100, 1,000 and 10,000 KPIs.

Each catalog is generated from the example catalog's mix (``catalog/example.yaml``
copied over and over, keys suffixed, leading links kept within a copy). Per size, a
scoring service runs on a private database and topic, fed a day of generated events,
then left alone:

- *idle CPU*: the service's CPU over ``--idle`` seconds with no event arriving (the
  evaluator's scheduled refreshes, the consumer's polls, the catalog watcher);
- *CPU per refresh*: that CPU divided by the KPI values published in the window (each
  KPI publishes once per ``update_every`` when nothing changes);
- *on time*: the share of KPIs whose stored value is no older than ``update_every``
  (with 10 % and 2 s of slack) at the end of the idle window;
- *reads*: ``wrk`` (C, keep-alive, closed loop) on ``GET /v1/kpis``, a KPI's detail and
  ``/v1/scorecard``, interleaved over ``--rounds`` rounds; p50/p99 are the medians of
  the rounds;
- *RSS* of the service, and of ``kpipulse dev`` (SQLite, embedded log) on the same catalog.

``--baseline COMMIT`` also runs the services from that commit's tree (``git archive``),
size by size right before the working tree's, so "before" and "after" meet the same
machine load. Results go to ``.cache/bench/catalog.json``; ``bench/report.py`` renders
them.
"""

from __future__ import annotations

import argparse
import asyncio
import copy
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import yaml

from bench import wrk
from bench.common import REPO, BenchStack, Service, free_port, machine, median, write_result
from bench.events import envelope_bytes, generated
from bench.procs import rss_bytes
from bench.scoring import prefill
from services.scoring.domain.catalog import Catalog

SIZES = (10, 100, 1000, 10000)
EXAMPLE = REPO / "catalog" / "example.yaml"


def generated_catalog(size: int, example: Path = EXAMPLE) -> list[dict[str, Any]]:
    """``size`` KPIs in the mix of ``example`` (a catalog file)."""
    base: list[dict[str, Any]] = yaml.safe_load(example.read_text())
    kpis = []
    for i in range(size):
        copy_no = i // len(base)
        kpi = copy.deepcopy(base[i % len(base)])
        kpi["key"] = f"{kpi['key']}_{copy_no}"
        kpi["name"] = f"{kpi['name']} #{copy_no}"
        kpi["leading_indicators"] = [
            f"{lead}_{copy_no}" for lead in kpi.get("leading_indicators", [])
        ]
        kpis.append(kpi)
    keys = {kpi["key"] for kpi in kpis}
    for kpi in kpis:
        kpi["leading_indicators"] = [k for k in kpi["leading_indicators"] if k in keys]
    return kpis


def _detail_key(kpis: list[dict[str, Any]]) -> str:
    """A KPI with leading indicators (its detail correlates them), else the first."""
    return str(next((k["key"] for k in kpis if k["leading_indicators"]), kpis[0]["key"]))


def _reads(
    base: str, detail_key: str, rounds: int, seconds: float, token: str
) -> dict[str, Any]:
    endpoints = {
        "list": f"{base}/v1/kpis",
        "detail": f"{base}/v1/kpis/{detail_key}",
        "scorecard": f"{base}/v1/scorecard",
    }
    runs: dict[str, list[wrk.WrkResult]] = {name: [] for name in endpoints}
    for _ in range(rounds):
        for name, url in endpoints.items():
            runs[name].append(wrk.get(url, connections=2, seconds=seconds, token=token))
    # A round in which no request completed has no percentiles: reported as missing.
    return {
        name: {
            "p50_ms": median([r.p50_ms if r.requests else math.inf for r in results]),
            "p99_ms": median([r.p99_ms if r.requests else math.inf for r in results]),
            "requests_per_s": median([r.requests / r.seconds for r in results]),
            "non_2xx": sum(r.non_2xx for r in results),
        }
        for name, results in runs.items()
    }


async def _published(dsn: str, since: datetime) -> int:
    conn = await asyncpg.connect(dsn)
    try:
        return int(await conn.fetchval("SELECT count(*) FROM kpi_history WHERE at > $1", since))
    finally:
        await conn.close()


async def _on_time(dsn: str, catalog: Catalog, now: datetime) -> float:
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch("SELECT kpi_key, as_of FROM kpi_current")
    finally:
        await conn.close()
    as_of = {r["kpi_key"]: r["as_of"] for r in rows}
    fresh = sum(
        1
        for kpi in catalog
        if kpi.key in as_of
        and (now - as_of[kpi.key]).total_seconds()
        <= 1.1 * kpi.update_every.total_seconds() + 2
    )
    return fresh / len(catalog)


def measure_service(size: int, code: Path, args: argparse.Namespace) -> dict[str, Any]:
    kpis = generated_catalog(size, args.example)
    catalog = Catalog.from_definitions(kpis)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "catalog.yaml"
        path.write_text(yaml.safe_dump(kpis, sort_keys=False))
        env = {"KPIPULSE_SCORING__CATALOG_PATH": str(path)}
        with BenchStack("catalog", extra_env=env, code=code) as stack:
            records = [envelope_bytes(e) for e in generated(args.events, seed=3)]
            asyncio.run(prefill(stack.topics["events"], records))
            scorer = stack.service("scoring", port_setting="KPIPULSE_SCORING__HTTP__PORT")
            started = time.monotonic()
            scorer.start()
            scorer.wait_healthy(timeout=1800)
            start_s = time.monotonic() - started
            time.sleep(args.settle)
            since = datetime.now(UTC)
            cpu0, t0 = scorer.cpu(), time.monotonic()
            time.sleep(args.idle)
            idle_cpu_s, idle_s = scorer.cpu() - cpu0, time.monotonic() - t0
            published = asyncio.run(_published(stack.dsn, since))
            on_time = asyncio.run(_on_time(stack.dsn, catalog, datetime.now(UTC)))
            rss_idle = rss_bytes(scorer.pid)
            base = f"http://127.0.0.1:{scorer.port}"
            reads = _reads(
                base, _detail_key(kpis), args.rounds, args.read_seconds, stack.admin_token
            )
            result = {
                "kpis": size,
                "start_s": start_s,
                "idle_cpu_share": idle_cpu_s / idle_s,
                "published_per_s": published / idle_s,
                "cpu_ms_per_refresh": 1000 * idle_cpu_s / published if published else None,
                "on_time": on_time,
                "rss_idle_bytes": rss_idle,
                "rss_after_reads_bytes": rss_bytes(scorer.pid),
                "reads": reads,
            }
    print(f"  scoring, {size} KPIs: {result}", flush=True)
    return result


def measure_dev(size: int, code: Path, args: argparse.Namespace) -> dict[str, Any]:
    """``kpipulse dev`` (SQLite, embedded log) on the same catalog: RSS and idle CPU."""
    kpis = generated_catalog(size, args.example)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "catalog.yaml"
        path.write_text(yaml.safe_dump(kpis, sort_keys=False))
        port = free_port()
        token = uuid.uuid4().hex
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("KPIPULSE_")},
            "KPIPULSE_LOG_LEVEL": "WARNING",
            "KPIPULSE_SCORING__CATALOG_PATH": str(path),
            "KPIPULSE_ADMIN_TOKEN": token,
        }
        dev = Service(
            "dev",
            [sys.executable, "-m", "services.cli", "dev", "--port", str(port),
             "--data-dir", str(Path(tmp) / "dev")],
            env,
            port,
            log_path=Path(tmp) / "dev.log",
            cwd=code,
        )
        dev.start()
        try:
            dev.wait_healthy(timeout=1800)
            time.sleep(args.settle)
            cpu0, t0 = dev.cpu(), time.monotonic()
            time.sleep(args.dev_idle)
            idle = (dev.cpu() - cpu0) / (time.monotonic() - t0)
            rss_idle = rss_bytes(dev.pid)
            listed = wrk.get(f"http://127.0.0.1:{port}/v1/kpis", connections=2,
                             seconds=args.read_seconds, token=token)
            result = {
                "kpis": size,
                "idle_cpu_share": idle,
                "rss_idle_bytes": rss_idle,
                "rss_after_reads_bytes": rss_bytes(dev.pid),
                "list_p50_ms": listed.p50_ms,
                "list_p99_ms": listed.p99_ms,
            }
        finally:
            dev.stop()
    print(f"  dev, {size} KPIs: {result}", flush=True)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default=",".join(map(str, SIZES)))
    parser.add_argument(
        "--baseline", help="also measure this commit's code, interleaved size by size"
    )
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--example", type=Path, default=EXAMPLE,
                        help="the catalog whose mix is repeated (with --baseline: its own)")
    parser.add_argument("--settle", type=float, default=20.0)
    # At least a minute: most of the mix refreshes every minute.
    parser.add_argument("--idle", type=float, default=65.0)
    parser.add_argument("--dev-idle", type=float, default=20.0)
    parser.add_argument("--dev-sizes", default="10,100,1000")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--read-seconds", type=float, default=5.0)
    parser.add_argument("--no-dev", action="store_true")
    args = parser.parse_args()
    if not wrk.available():
        raise SystemExit("wrk is missing: deploy/local/tools.sh wrk")
    checkout = Path(tempfile.mkdtemp(prefix="kpipulse-code-"))
    codes = {"after": REPO}
    results: dict[str, dict[str, list[dict[str, Any]]]] = {}
    try:
        if args.baseline:
            codes = {"before": _code(args.baseline, checkout), **codes}
            # Both run the baseline's example mix: the same input, which the older code
            # understands (the newer example may hold kinds of KPI it does not know).
            args.example = checkout / "catalog" / "example.yaml"
        for size in (int(s) for s in args.sizes.split(",")):
            for label, code in codes.items():
                print(f"{label}: {size} KPIs", flush=True)
                runs = results.setdefault(label, {"scoring": [], "dev": []})
                runs["scoring"].append(measure_service(size, code, args))
                if not args.no_dev and str(size) in args.dev_sizes.split(","):
                    runs["dev"].append(measure_dev(size, code, args))
            # Written after every size: a long run interrupted keeps what it measured.
            write_result(
                "catalog",
                {
                    "machine": machine(),
                    "baseline": args.baseline,
                    "settings": {
                        k: str(v) if isinstance(v, Path) else v
                        for k, v in vars(args).items() if k != "baseline"
                    },
                    "example_from": args.baseline or "HEAD",
                    "runs": results,
                },
            )
    finally:
        shutil.rmtree(checkout, ignore_errors=True)


def _code(commit: str, into: Path) -> Path:
    """The tree of ``commit``, extracted into ``into`` (no git metadata changed)."""
    archive = subprocess.run(
        ["git", "archive", commit], cwd=REPO, capture_output=True, check=True
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)
    return into


if __name__ == "__main__":
    main()
