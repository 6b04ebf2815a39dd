"""Run KPI Pulse commands as real processes for tests that kill and restart them."""

from __future__ import annotations

import os
import random
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path

import httpx

from shared.settings import Settings

REPO = Path(__file__).resolve().parents[2]
KPIPULSE = [sys.executable, "-m", "services.cli"]


def _ephemeral_floor() -> int:
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def free_port() -> int:
    """A port free now, below the kernel's ephemeral range.

    A port the kernel handed out (bind to 0) is one it may hand again as the source port
    of any outgoing connection: a service killed and restarted on it can find it taken.
    """
    floor = _ephemeral_floor()
    for _ in range(1000):
        port = random.randrange(max(1024, floor - 12_000), floor)
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError(f"no free port below {floor}")


def settings_env(settings: Settings) -> dict[str, str]:
    """Environment variables that reproduce the parts of ``settings`` tests vary."""
    env = {
        "KPIPULSE_ENVIRONMENT": "test",
        "KPIPULSE_ADMIN_TOKEN": settings.admin_token.get_secret_value(),
        "KPIPULSE_DATABASE__URL": settings.database.url,
        "KPIPULSE_KAFKA__BOOTSTRAP_SERVERS": settings.kafka.bootstrap_servers,
        "KPIPULSE_KAFKA__TOPIC_PREFIX": settings.kafka.topic_prefix,
        "KPIPULSE_KAFKA__PARTITIONS": str(settings.kafka.partitions),
        "KPIPULSE_KAFKA__REPLICATION_FACTOR": str(settings.kafka.replication_factor),
        "KPIPULSE_KAFKA__MIN_INSYNC_REPLICAS": str(settings.kafka.min_insync_replicas),
        "KPIPULSE_SCORING__GROUP_ID": settings.scoring.group_id,
        "KPIPULSE_ALERTS__GROUP_ID": settings.alerts.group_id,
        "KPIPULSE_ALERTS__DIGEST__ENABLED": str(settings.alerts.digest.enabled).lower(),
        # The example catalog has webhook owners: alerts refuses to start without it.
        "KPIPULSE_ALERTS__WEBHOOK_SECRET": settings.alerts.webhook_secret.get_secret_value()
        or "test-alerts-webhook-signing-secret",
        "KPIPULSE_TIME_ZONE": settings.time_zone,
        # Empty means no catalog file (not the default file).
        "KPIPULSE_SCORING__CATALOG_PATH": str(settings.scoring.catalog_path or ""),
    }
    return env


class ServiceProcess:
    """One ``kpipulse <command>`` process with its log in ``log_dir``."""

    def __init__(
        self, command: list[str], env: Mapping[str, str], log_dir: Path, name: str, port: int
    ) -> None:
        self.command = command
        self.env = {**os.environ, **env}
        self.log_path = log_dir / f"{name}.log"
        self.port = port
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            [*KPIPULSE, *self.command], env=self.env, cwd=REPO, stdout=log, stderr=log
        )

    def wait_healthy(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise AssertionError(f"process exited: {self.log_path.read_text()[-3000:]}")
            try:
                if httpx.get(f"http://127.0.0.1:{self.port}/healthz", timeout=1).is_success:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise AssertionError(f"not healthy in {timeout} s: {self.log_path.read_text()[-3000:]}")

    def kill9(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    def terminate(self, timeout: float = 30) -> int | None:
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        return self.proc.returncode
