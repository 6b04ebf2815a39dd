"""Open-loop constant-rate HTTP load generator for ingest (its own process, httpx).

Event i is due at ``t0 + i / rate`` whatever happened to earlier requests (no
coordinated omission): every 10 ms tick the events due are posted, one request per
source (each source has its own write key), over keep-alive connections. Each request
is logged as a JSON line: send time, answer time, status and the event ids.
Usage: ``python -m bench.loadgen URL KEYS_JSON RATE SECONDS OUT_FILE``.
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections import defaultdict
from typing import Any

import httpx
import orjson
import uvloop

from bench.events import fresh_copies, generated

TICK_S = 0.01


async def run(url: str, keys: dict[str, str], rate: float, seconds: float, out: str) -> None:
    source = fresh_copies(generated(5000, seed=13), seed=int(rate) + 1)
    count = int(rate * seconds)
    log: list[dict[str, Any]] = []
    limits = httpx.Limits(max_connections=64, max_keepalive_connections=64)
    async with httpx.AsyncClient(limits=limits, timeout=30) as client:

        async def post(src: str, events: list[dict[str, Any]]) -> None:
            sent = time.time()
            try:
                response = await client.post(
                    url,
                    content=orjson.dumps({"batch": events}),
                    headers={"Authorization": f"Bearer {keys[src]}",
                             "Content-Type": "application/json"},
                )
                status = response.status_code
            except httpx.HTTPError:
                status = 0
            log.append({"sent": sent, "done": time.time(), "status": status,
                        "ids": [e["event_id"] for e in events]})

        tasks: list[asyncio.Task[None]] = []
        t0 = time.time()
        i = 0
        while i < count:
            due = min(count, int((time.time() - t0) * rate) + 1)
            by_source: dict[str, list[dict[str, Any]]] = defaultdict(list)
            while i < due:
                event = next(source)
                by_source[event["source"]].append(event)
                i += 1
            tasks.extend(asyncio.create_task(post(s, evs)) for s, evs in by_source.items())
            await asyncio.sleep(TICK_S)
        await asyncio.gather(*tasks)
    with open(out, "wb") as fh:  # noqa: ASYNC230 - after the measurement
        fh.write(b"\n".join(orjson.dumps(entry) for entry in log) + b"\n")


def main() -> None:
    url, keys, rate, seconds, out = sys.argv[1:6]
    uvloop.run(run(url, orjson.loads(keys), float(rate), float(seconds), out))


if __name__ == "__main__":
    main()
