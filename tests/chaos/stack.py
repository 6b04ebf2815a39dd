"""The three services as processes on a database and topic set of their own."""

from __future__ import annotations

import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import httpx

from shared.settings import Settings, load_settings
from tests.conftest import ADMIN_TOKEN, create_database
from tests.support.processes import KPIPULSE, REPO, ServiceProcess, free_port, settings_env

# One KPI per event kind. The first two carry the volume (exactness); the last two are
# driven by events the test injects at chosen moments, so their alert episodes are
# known in advance. update_every is long on purpose: values are published on every
# status change anyway, and no "stale" or "repeat" notice can sneak into the count.
OWNERS = {
    "chaos_page_views": "views-owner@example.com",
    "chaos_revenue": "revenue-owner@example.com",
    "chaos_signups": "signups-owner@example.com",
    "chaos_complaints": "complaints-owner@example.com",
}
_KPIS = {
    "chaos_page_views": ("{count: {source: web, type: page_view}}", "higher_is_better", 1, 2),
    "chaos_revenue": (
        "{sum: {source: crm, type: payment_received, field: value}}", "higher_is_better", 1, 2
    ),
    # Breached (below 20) from the first signups until 40 arrive: FIRING, then RESOLVED.
    "chaos_signups": ("{count: {source: web, type: signup}}", "higher_is_better", 20, 40),
    # Fine until more than 50 complaints: then FIRING, and it stays so.
    "chaos_complaints": (
        "{count: {source: support, type: complaint_received}}", "lower_is_better", 50, 10
    ),
}
SIGNUP_MINIMUM, SIGNUP_TARGET = 20, 40
COMPLAINT_MINIMUM = 50


def catalog_yaml() -> str:
    entries = []
    for key, (formula, direction, minimum, target) in _KPIS.items():
        entries.append(
            f"""- key: {key}
  name: {key.replace("_", " ").capitalize()}
  objective: Survive the chaos test
  perspective: customer
  stage: engage
  department: reliability
  owners: [{{name: Owner, email: {OWNERS[key]}}}]
  formula: {formula}
  window: 7d
  update_every: 1h
  review_period: week
  unit: count
  direction: {direction}
  minimum: {minimum}
  target: {target}
  weight: 1
  expires_on: 2099-12-31
  indicator: lagging
  tracking_cost: {{amount: 0, currency: USD, per: month}}
  data_collection: The chaos test's client
  require_full_window: false
"""
        )
    return "".join(entries)


@dataclass
class Stack:
    """The services' processes, in start order; scoring and alerts may run several."""

    services: list[tuple[str, ServiceProcess]]
    env: dict[str, str]

    def instances(self, name: str) -> list[ServiceProcess]:
        return [process for service, process in self.services if service == name]

    @property
    def ingest(self) -> ServiceProcess:
        return self.instances("ingest")[0]

    @property
    def scoring(self) -> ServiceProcess:
        return self.instances("scoring")[0]

    @property
    def alerts(self) -> ServiceProcess:
        return self.instances("alerts")[0]

    def url(self, process: ServiceProcess) -> str:
        return f"http://127.0.0.1:{process.port}"

    def start(self) -> None:
        for _, process in self.services:
            process.start()
        for _, process in self.services:
            process.wait_healthy(90)

    def stop(self) -> None:
        for _, process in self.services:
            process.terminate(30)

    def restart(self, process: ServiceProcess) -> None:
        """kill -9, then a new process on the same port."""
        process.kill9()
        process.start()
        process.wait_healthy(90)

    def ready(self) -> dict[str, int]:
        """Each service's /readyz status (0 when it did not answer)."""
        out = {}
        for name, process in self.services:
            try:
                out[name] = httpx.get(f"{self.url(process)}/readyz", timeout=15).status_code
            except httpx.HTTPError:
                out[name] = 0
        return out


def build_stack(
    settings: Settings, smtp_port: int, log_dir: Path, *, scorers: int = 1, alerters: int = 1
) -> Stack:
    env = settings_env(settings) | {
        "KPIPULSE_LOG_LEVEL": "INFO",
        "KPIPULSE_INGEST__RETRY_AFTER_S": "2",
        "KPIPULSE_ALERTS__SMTP__PORT": str(smtp_port),
        "KPIPULSE_ALERTS__OUTBOX_POLL_INTERVAL_S": "0.2",
        "KPIPULSE_ALERTS__OUTBOX_LEASE_S": "8",
        "KPIPULSE_ALERTS__DELIVERY_BASE_BACKOFF_S": "0.5",
        "KPIPULSE_ALERTS__DELIVERY_MAX_BACKOFF_S": "3",
        "KPIPULSE_ALERTS__DELIVERY_MAX_ATTEMPTS": "200",
    }

    def process(command: str, name: str) -> tuple[str, ServiceProcess]:
        port = free_port()
        variable = f"KPIPULSE_{command.upper()}__HTTP__PORT"
        return command, ServiceProcess([command], env | {variable: str(port)}, log_dir, name, port)

    return Stack(
        [
            process("ingest", "ingest"),
            *(process("scoring", f"scoring-{n}" if scorers > 1 else "scoring")
              for n in range(1, scorers + 1)),
            *(process("alerts", f"alerts-{n}" if alerters > 1 else "alerts")
              for n in range(1, alerters + 1)),
        ],
        env,
    )


async def chaos_settings(tmp_path: Path, unique: str, *, kafka: dict[str, object]) -> Settings:
    """Settings on a new database (``kpipulse_chaos_<unique>``) and the chaos catalog."""
    url = await create_database(f"kpipulse_chaos_{unique}")
    catalog = tmp_path / "catalog.yaml"
    catalog.write_text(catalog_yaml())
    return load_settings(
        environment="test",
        admin_token=ADMIN_TOKEN,
        database={"url": url, "pool_size": 5},
        kafka=kafka,
        scoring={"catalog_path": catalog, "group_id": f"chaos-scoring-{unique}"},
        # The weekly digest would add its own mails to the exact count of alert mails.
        alerts={"group_id": f"chaos-alerts-{unique}", "digest": {"enabled": False}},
    )


def kpipulse(env: Mapping[str, str], *args: str) -> str:
    """Run a ``kpipulse`` operator command with the stack's settings; return its output."""
    import os

    done = subprocess.run(
        [*KPIPULSE, *args], env={**os.environ, **env}, cwd=REPO,
        capture_output=True, text=True, timeout=180, check=False,
    )
    if done.returncode != 0:
        raise AssertionError(f"kpipulse {' '.join(args)} failed: {done.stdout}{done.stderr}")
    return done.stdout


def create_key(env: Mapping[str, str], source: str) -> str:
    output = kpipulse(env, "keys", "create", "--source", source, "--name", f"chaos {source}")
    for line in output.splitlines():
        if line.startswith("key:"):
            return line.split(":", 1)[1].strip()
    raise AssertionError(f"no key in: {output}")
