"""Stop and start the local Kafka broker and PostgreSQL server the suite runs against.

The deploy/local scripts find their processes through ``KPIPULSE_CACHE_DIR`` (inherited)
and the ports; the ports are derived from the addresses the tests use, so the scripts
act on exactly the broker and server this run talks to, never on another checkout's.
"""

from __future__ import annotations

import os
import subprocess
import time
from urllib.parse import urlsplit

from tests.support.processes import REPO

SCRIPTS = REPO / "deploy" / "local"


class LocalInfra:
    def __init__(self, kafka: str, server_dsn: str) -> None:
        kafka_port = kafka.rsplit(":", 1)[1]
        pg_port = str(urlsplit(server_dsn).port or 5432)
        self.env = {
            **os.environ,
            "KPIPULSE_KAFKA_PORT": kafka_port,
            "KPIPULSE_PG_PORT": pg_port,
        }
        self.kafka_stopped = False
        self.postgres_stopped = False

    def _run(self, script: str, action: str, *, check: bool = True) -> str:
        done = subprocess.run(
            [str(SCRIPTS / script), action],
            env=self.env,
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=180,
            check=False,
        )
        output = done.stdout + done.stderr
        if check and done.returncode != 0:
            raise AssertionError(f"{script} {action} failed ({done.returncode}): {output}")
        return output

    def managed(self) -> str | None:
        """None when both run under these scripts; otherwise why the test cannot act."""
        for script in ("kafka.sh", "postgres.sh"):
            status = self._run(script, "status", check=False)
            if "running" not in status or "stopped" in status:
                return f"{script} status says: {status.strip()} (not started by deploy/local?)"
        return None

    def stop_kafka(self) -> float:
        started = time.monotonic()
        self.kafka_stopped = True
        self._run("kafka.sh", "stop")
        return time.monotonic() - started

    def start_kafka(self) -> float:
        started = time.monotonic()
        self._run("kafka.sh", "start")
        self.kafka_stopped = False
        return time.monotonic() - started

    def stop_postgres(self) -> None:
        self.postgres_stopped = True
        self._run("postgres.sh", "stop")

    def start_postgres(self) -> None:
        self._run("postgres.sh", "start")
        self.postgres_stopped = False

    def restore(self) -> None:
        """Whatever failed, leave the infrastructure running for whoever comes next."""
        if self.kafka_stopped:
            self.start_kafka()
        if self.postgres_stopped:
            self.start_postgres()


class KafkaCluster:
    """The three-node cluster of ``deploy/local/kafka-cluster.sh``, for this run only."""

    def __init__(self) -> None:
        self.env = dict(os.environ)

    def _run(self, *args: str) -> str:
        done = subprocess.run(
            [str(SCRIPTS / "kafka-cluster.sh"), *args],
            env=self.env, cwd=REPO, capture_output=True, text=True, timeout=300, check=False,
        )
        output = done.stdout + done.stderr
        if done.returncode != 0:
            raise AssertionError(f"kafka-cluster.sh {' '.join(args)} failed: {output}")
        return output

    @property
    def bootstrap(self) -> str:
        return self._run("bootstrap").strip()

    def start(self) -> None:
        self._run("start")

    def kill(self, node: int) -> None:
        self._run("kill", str(node))

    def start_node(self, node: int) -> float:
        started = time.monotonic()
        self._run("start-node", str(node))
        return time.monotonic() - started

    def remove(self) -> None:
        """Stop every node and delete the cluster's data: the next run starts empty."""
        self._run("reset")
