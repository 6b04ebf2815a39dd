"""``kpipulse dev``: kill -9 loses no acknowledged event (embedded log and SQLite)."""

from __future__ import annotations

import signal
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx

from tests.e2e.browser import DevServer, run_dev_server

EVENTS = 300


def _complaints(server: DevServer) -> float | None:
    kpis = httpx.get(
        f"{server.base_url}/v1/kpis", headers=server.admin_headers(), timeout=10
    ).json()["kpis"]
    value: float | None = next(k for k in kpis if k["key"] == "complaints")["value"]
    return value


def test_kill_dash_9_loses_no_acknowledged_event(tmp_path: Path) -> None:
    now = datetime.now(UTC)
    batches = [
        [
            {
                "source": "support",
                "type": "complaint_received",
                "occurred_at": (now - timedelta(minutes=5 + i)).isoformat(),
            }
            for i in range(start, start + 50)
        ]
        for start in range(0, EVENTS, 50)
    ]
    with run_dev_server(tmp_path) as server:
        for batch in batches:
            server.post_events("support", batch)
        # Every batch got its 200: kill at once, before scoring may have folded them.
        server.process.send_signal(signal.SIGKILL)
        server.process.wait(10)

    with run_dev_server(tmp_path) as server:
        # Well under the KPI's update_every (1 min): the read API must not lag behind.
        deadline = time.monotonic() + 30
        value = _complaints(server)
        while value != EVENTS and time.monotonic() < deadline:
            time.sleep(0.5)
            value = _complaints(server)
        assert value == EVENTS, server.log_tail()
