"""What every benchmark needs: CPU accounting, percentiles, results, and a private stack.

A ``BenchStack`` gives one benchmark run its own topic prefix, its own database (created
on the local server, migrated, dropped afterwards) and its own consumer group ids, so
runs never see each other's messages or state. Services run as real ``kpipulse``
processes; their CPU time is read from ``/proc/<pid>/stat`` (utime + stime), which is
what "per CPU-second" means in every figure.
"""

from __future__ import annotations

import json
import os
import platform
import re
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import httpx

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / ".cache" / "bench"
LOGS = RESULTS / "logs"
# The local infrastructure's addresses, moved as the tests' are: deploy/local/common.sh
# exports the TEST_ variables, but `make bench` starts Python outside that script, so the
# ports it derives them from are read here too.
_KAFKA_PORT = os.environ.get("KPIPULSE_KAFKA_PORT", "9092")
_PG_PORT = os.environ.get("KPIPULSE_PG_PORT", "5432")
KAFKA = os.environ.get("KPIPULSE_TEST_KAFKA", f"127.0.0.1:{_KAFKA_PORT}")
ADMIN_DSN = os.environ.get(
    "KPIPULSE_TEST_SERVER_DSN", f"postgresql://kpipulse:kpipulse@127.0.0.1:{_PG_PORT}/kpipulse"
)
_SERVER = ADMIN_DSN.rsplit("/", 1)[0].removeprefix("postgresql://")
_TICK = os.sysconf("SC_CLK_TCK")
T = TypeVar("T")


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds consumed so far by process ``pid`` (its threads too)."""
    raw = Path(f"/proc/{pid}/stat").read_text()
    fields = raw[raw.rindex(")") + 2 :].split()
    # After "pid (comm) ", fields[0] is the state; utime and stime are fields 14 and 15.
    return (int(fields[11]) + int(fields[12])) / _TICK


def processes_cpu(name: str) -> float:
    """CPU seconds of every process whose command name is ``name`` (e.g. postgres)."""
    total = 0.0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            raw = (entry / "stat").read_text()
        except OSError:
            continue
        if raw[raw.index("(") + 1 : raw.rindex(")")] == name:
            fields = raw[raw.rindex(")") + 2 :].split()
            total += (int(fields[11]) + int(fields[12])) / _TICK
    return total


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100); NaN for an empty sample."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(q / 100 * len(ordered) + 0.5)))
    return ordered[rank - 1]


def median(values: Sequence[float]) -> float:
    return percentile(values, 50)


def write_result(name: str, data: Mapping[str, Any]) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    payload = {"benchmark": name, "finished_at": datetime.now(UTC).isoformat(), **data}
    path.write_text(json.dumps(payload, indent=2, sort_keys=False) + "\n")
    return path


def read_result(name: str) -> dict[str, Any] | None:
    path = RESULTS / f"{name}.json"
    if not path.exists():
        return None
    loaded: dict[str, Any] = json.loads(path.read_text())
    return loaded


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def machine() -> dict[str, Any]:
    """The description every figure is published with."""
    model = "unknown"
    mem_kb = 0
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            mem_kb = int(line.split()[1])
    kafka_stamp = REPO / ".cache" / "kafka" / "libs" / ".version"
    pom = REPO / "deploy" / "local" / "kafka" / "pom.xml"
    kafka = kafka_stamp.read_text().strip() if kafka_stamp.exists() else "unknown"
    if kafka == "unknown" and pom.exists():
        found = re.search(r"<kafka.version>(.*?)</kafka.version>", pom.read_text())
        kafka = found.group(1) if found else kafka
    return {
        "nproc": os.cpu_count(),
        "cpu_model": model,
        "memory_gib": round(mem_kb / 1024 / 1024, 1),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "kafka": kafka,
        "postgres": _postgres_version(),
        "packages": _versions(["aiokafka", "uvicorn", "uvloop", "httptools", "fastapi",
                               "starlette", "pydantic", "orjson", "sqlalchemy", "asyncpg",
                               "msgspec"]),
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        # Other work on the shared machine shows up here; wall-clock latencies suffer
        # from it far more than the per-CPU-second figures.
        "load_average": [round(x, 2) for x in os.getloadavg()],
    }


def _versions(names: Sequence[str]) -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    found: dict[str, str] = {}
    for name in names:
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            found[name] = "missing"
    return found


def _postgres_version() -> str:

    import asyncpg

    async def ask() -> str:
        conn = await asyncpg.connect(ADMIN_DSN)
        try:
            return str(await conn.fetchval("SHOW server_version"))
        finally:
            await conn.close()

    try:
        return _in_thread(ask)
    except Exception as exc:
        return f"unknown ({exc.__class__.__name__})"


@dataclass
class Service:
    """One ``kpipulse <command>`` process with its log file."""

    name: str
    command: list[str]
    env: dict[str, str]
    port: int | None = None
    proc: subprocess.Popen[bytes] | None = None
    log_path: Path = field(default_factory=lambda: LOGS / "service.log")
    cwd: Path = REPO  # another checkout runs its own code (``python -m`` imports from cwd)

    @property
    def pid(self) -> int:
        assert self.proc is not None, f"{self.name} not started"
        return self.proc.pid

    def start(self) -> None:
        LOGS.mkdir(parents=True, exist_ok=True)
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            self.command, env=self.env, cwd=self.cwd, stdout=log, stderr=log
        )

    def wait_healthy(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited: {self.tail()}")
            try:
                url = f"http://127.0.0.1:{self.port}/healthz"
                if httpx.get(url, timeout=1).is_success:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"{self.name} not healthy within {timeout} s: {self.tail()}")

    def tail(self, chars: int = 3000) -> str:
        return self.log_path.read_text(errors="replace")[-chars:] if self.log_path.exists() else ""

    def cpu(self) -> float:
        return cpu_seconds(self.pid)

    def stop(self, timeout: float = 30) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)


class BenchStack:
    """A private prefix, database and group ids; services started in it are stopped,
    and the database and topics removed, on ``close``. ``code`` is the tree whose
    ``kpipulse`` sets it up (another commit's services need that commit's schema)."""

    def __init__(self, name: str, *, partitions: int = 6, extra_env: Mapping[str, str] = {},
                 code: Path = REPO):
        stamp = f"{int(time.time())}_{uuid.uuid4().hex[:6]}"
        self.name = name
        self.code = code
        self.prefix = f"bench_{name}_{stamp}."
        self.database = f"bench_{name}_{stamp}"
        self.db_url = f"postgresql+asyncpg://{_SERVER}/{self.database}"
        self.dsn = f"postgresql://{_SERVER}/{self.database}"
        self.scoring_group = f"bench-scoring-{stamp}"
        self.alerts_group = f"bench-alerts-{stamp}"
        self.admin_token = uuid.uuid4().hex
        self.env: dict[str, str] = {
            **os.environ,
            "KPIPULSE_ENVIRONMENT": "test",
            "KPIPULSE_LOG_LEVEL": "WARNING",
            "KPIPULSE_ADMIN_TOKEN": self.admin_token,
            "KPIPULSE_DATABASE__URL": self.db_url,
            "KPIPULSE_KAFKA__BOOTSTRAP_SERVERS": KAFKA,
            "KPIPULSE_KAFKA__TOPIC_PREFIX": self.prefix,
            "KPIPULSE_KAFKA__PARTITIONS": str(partitions),
            "KPIPULSE_SCORING__GROUP_ID": self.scoring_group,
            "KPIPULSE_SCORING__CATALOG_PATH": str(REPO / "catalog" / "example.yaml"),
            "KPIPULSE_ALERTS__GROUP_ID": self.alerts_group,
            # The example catalog has webhook owners: alerts refuses to start without it.
            "KPIPULSE_ALERTS__WEBHOOK_SECRET": uuid.uuid4().hex,
            # The per-key limit counts events; a benchmark must never hit it.
            "KPIPULSE_INGEST__RATE_LIMIT_PER_SECOND": "1e9",
            "KPIPULSE_INGEST__RATE_LIMIT_BURST": "1000000000",
            **extra_env,
        }
        self.services: list[Service] = []
        self.topics = {
            "events": f"{self.prefix}kpipulse.events.v1",
            "dlq": f"{self.prefix}kpipulse.events.dlq.v1",
            "kpi_values": f"{self.prefix}kpipulse.kpi-values.v1",
        }

    def kpipulse(self, *args: str, timeout: float = 180) -> str:
        done = subprocess.run(
            [sys.executable, "-m", "services.cli", *args],
            env=self.env,
            cwd=self.code,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if done.returncode != 0:
            raise RuntimeError(f"kpipulse {' '.join(args)} failed: {done.stderr[-2000:]}")
        return done.stdout

    def setup(self) -> None:
        _admin_sql(f'CREATE DATABASE "{self.database}"')
        self.kpipulse("migrate")
        self.kpipulse("topics", "create")

    def write_key(self, source: str = "web") -> str:
        out = self.kpipulse("keys", "create", "--source", source, "--name", f"bench-{source}")
        for line in out.splitlines():
            if line.startswith("key:"):
                return line.split(":", 1)[1].strip()
        raise RuntimeError(f"no key in: {out}")

    def service(self, name: str, *, port_setting: str | None, env: Mapping[str, str] = {},
                command: Sequence[str] | None = None) -> Service:
        port = free_port() if port_setting else None
        full_env = {**self.env, **env}
        if port_setting:
            full_env[port_setting] = str(port)
        profile = os.environ.get("BENCH_PROFILE", "")
        argv = (
            list(command) if command is not None
            else [sys.executable, "-m", "services.cli", name]
        )
        if command is None and name in profile.split(","):
            argv = [sys.executable, "-m", "bench.profiled", name]
        svc = Service(
            name, argv, full_env, port, log_path=LOGS / f"{self.database}-{name}.log",
            cwd=self.code
        )
        self.services.append(svc)
        return svc

    def close(self) -> None:
        for svc in reversed(self.services):
            # A profiled service writes its profile on the way out: give it time.
            svc.stop(timeout=180 if "bench.profiled" in svc.command else 30)
        try:
            _admin_sql(f'DROP DATABASE IF EXISTS "{self.database}" WITH (FORCE)')
        except Exception as exc:
            print(f"warning: could not drop {self.database}: {exc}", file=sys.stderr)
        try:
            _delete_topics(list(self.topics.values()))
        except Exception as exc:
            print(f"warning: could not delete topics: {exc}", file=sys.stderr)

    def __enter__(self) -> BenchStack:
        try:
            self.setup()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()


def _admin_sql(statement: str) -> None:

    import asyncpg

    async def run() -> None:
        conn = await asyncpg.connect(ADMIN_DSN)
        try:
            await conn.execute(statement)
        finally:
            await conn.close()

    _in_thread(run)


def _delete_topics(topics: list[str]) -> None:

    from aiokafka.admin import AIOKafkaAdminClient

    async def run() -> None:
        admin = AIOKafkaAdminClient(bootstrap_servers=KAFKA, request_timeout_ms=15_000)
        await admin.start()
        try:
            existing = set(await admin.list_topics())
            doomed = [t for t in topics if t in existing]
            if doomed:
                await admin.delete_topics(doomed)
        finally:
            await admin.close()

    _in_thread(run)


def _in_thread(work: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run a coroutine to completion on its own loop, callable from inside a loop too."""
    import asyncio
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(1) as pool:
        return pool.submit(lambda: asyncio.run(work())).result()


def ratio(value: float, baseline: float) -> float:
    return value / baseline if baseline > 0 else float("nan")
