"""Reading processes from /proc: memory, children, and the servers a benchmark uses.

Kafka is the broker JVM started by ``deploy/local/kafka.sh`` (found by its command line);
PostgreSQL is the postmaster of the server the benchmark talks to, found by asking it.
"""

from __future__ import annotations

from pathlib import Path

from bench.common import ADMIN_DSN, REPO, _in_thread


def _status(pid: int, field: str, name: str = "status") -> int:
    for line in Path(f"/proc/{pid}/{name}").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    return 0


def rss_bytes(pid: int) -> int:
    return _status(pid, "VmRSS")


def pss_bytes(pid: int) -> int:
    return _status(pid, "Pss", "smaps_rollup")


def _parent(pid: int) -> int:
    stat = Path(f"/proc/{pid}/stat").read_text()
    return int(stat[stat.rindex(")") + 2 :].split()[1])


def children(parent: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if _parent(int(entry.name)) == parent:
                    found.append(int(entry.name))
            except OSError:  # a process that ended meanwhile
                continue
    return found


def postmaster_pid() -> int:
    """The postmaster of the server the benchmark uses: the parent of our own backend
    (other checkouts' servers on the same machine are not counted)."""
    import asyncpg

    async def ask() -> int:
        conn = await asyncpg.connect(ADMIN_DSN)
        try:
            # Read while the backend still exists.
            return _parent(int(await conn.fetchval("SELECT pg_backend_pid()")))
        finally:
            await conn.close()

    return _in_thread(ask)


def postgres_pids() -> list[int]:
    master = postmaster_pid()
    return [master, *children(master)]


def kafka_pid() -> int:
    # The single broker's own configuration: not a node of kafka-cluster.sh's cluster.
    marker = str(REPO / ".cache" / "kafka" / "config" / "server.properties")
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmd = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            except OSError:
                continue
            if cmd.startswith("java") and marker in cmd and "kafka.Kafka" in cmd:
                return int(entry.name)
    raise RuntimeError("no Kafka broker of this checkout running (deploy/local/infra.sh up)")
