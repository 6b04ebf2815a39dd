"""``kpipulse simulate``: N simulated days of web, CRM, email and support events, posted
through the real ingest API with write keys, compressed into a few minutes.

Keys come from ``--keys-file`` (``kpipulse dev`` writes one) or ``--key SOURCE=KEY``.
Every 503/429 is retried after its Retry-After, so the simulator never loses an event.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import time
from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import orjson

from services.simulator.generator import SCENARIOS, Event, simulated_days
from shared.settings import Settings

DEFAULT_KEYS_FILE = Path(".cache/dev/dev-keys.json")
BATCH = 500


def register(sub: Any) -> None:
    sim = sub.add_parser("simulate", help="post a realistic stream of events to ingest")
    sim.add_argument("--url", default="http://127.0.0.1:8000", help="ingest base URL")
    sim.add_argument("--days", type=int, default=14, help="simulated days (ending now)")
    sim.add_argument("--minutes", type=float, default=1.0, help="real time to spread them over")
    sim.add_argument("--scale", type=float, default=1.0, help="volume multiplier")
    sim.add_argument(
        "--scenario",
        choices=SCENARIOS,
        default="steady",
        help="bend the last day so a KPI crosses its minimum (e.g. complaints_spike)",
    )
    sim.add_argument("--seed", type=int, default=1)
    sim.add_argument("--keys-file", type=Path, default=DEFAULT_KEYS_FILE)
    sim.add_argument(
        "--key", action="append", default=[], metavar="SOURCE=KEY", help="a write key per source"
    )
    sim.set_defaults(run=_run)


def _keys(args: argparse.Namespace) -> dict[str, str]:
    keys: dict[str, str] = {}
    if args.keys_file.exists():
        keys.update(orjson.loads(args.keys_file.read_bytes()))
    for item in args.key:
        source, _, key = item.partition("=")
        keys[source] = key
    return keys


def _run(args: argparse.Namespace, _settings: Settings) -> int:
    keys = _keys(args)
    missing = {"web", "crm", "email", "support"} - set(keys)
    if missing:
        print(
            f"kpipulse simulate: no write key for {', '.join(sorted(missing))}; start "
            f"`kpipulse dev` (it writes {DEFAULT_KEYS_FILE}) or pass --key SOURCE=KEY",
            file=sys.stderr,
        )
        return 2
    if args.days < 1 or args.minutes <= 0:
        print("kpipulse simulate: --days must be >= 1 and --minutes > 0", file=sys.stderr)
        return 2
    return asyncio.run(_simulate(args, keys))


async def _simulate(args: argparse.Namespace, keys: dict[str, str]) -> int:
    rng = random.Random(args.seed)  # noqa: S311 - reproducible simulation, not secrets
    now = datetime.now(UTC)
    pace = args.minutes * 60 / args.days
    sent = 0
    started = time.monotonic()
    async with httpx.AsyncClient(base_url=args.url, timeout=30) as client:
        days = simulated_days(
            rng, days=args.days, now=now, scenario=args.scenario, scale=args.scale
        )
        for day, events in enumerate(days):
            day_started = time.monotonic()
            sent += await _post_day(client, keys, events)
            _progress(day + 1, args.days, sent, time.monotonic() - started)
            await asyncio.sleep(max(0.0, pace - (time.monotonic() - day_started)))
    print(file=sys.stderr)
    print(f"sent {sent} events over {args.days} simulated days (scenario: {args.scenario})")
    return 0


async def _post_day(client: httpx.AsyncClient, keys: dict[str, str], events: list[Event]) -> int:
    by_source: dict[str, list[Event]] = defaultdict(list)
    for event in events:
        by_source[event["source"]].append(event)
    accepted = 0
    for source, items in by_source.items():
        for start in range(0, len(items), BATCH):
            accepted += await _post(client, keys[source], items[start : start + BATCH])
    return accepted


async def _post(client: httpx.AsyncClient, key: str, batch: list[Event]) -> int:
    body = orjson.dumps({"batch": batch})
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    for _ in range(60):
        response = await client.post("/v1/events", content=body, headers=headers)
        if response.status_code in (429, 503):
            await asyncio.sleep(float(response.headers.get("retry-after", "1")))
            continue
        if response.status_code != 200:
            raise SystemExit(f"ingest refused a batch: {response.status_code} {response.text}")
        answer = response.json()
        if answer.get("rejected"):
            raise SystemExit(f"ingest rejected events: {answer['rejected'][:3]}")
        return len(answer["accepted"])
    raise SystemExit("ingest kept answering 503/429 for a minute; is it healthy?")


def _progress(done: int, total: int, sent: int, elapsed: float) -> None:
    width = 30
    filled = round(width * done / total)
    bar = "#" * filled + "-" * (width - filled)
    print(
        f"\r[{bar}] day {done}/{total}  {sent} events  {elapsed:5.1f}s",
        end="",
        file=sys.stderr,
        flush=True,
    )
