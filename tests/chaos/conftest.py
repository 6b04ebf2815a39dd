"""Chaos suite set-up: opt-in only, since it stops Kafka and restarts Postgres.

``deploy/local/test.sh`` (``make test``) runs this folder in its own pytest invocation
after the main suite; ``make chaos`` runs it longer with ``KPIPULSE_CHAOS_SCALE``. A
plain ``pytest tests`` does not collect it (``norecursedirs`` in pyproject.toml) rather
than pull the broker from under the other tests; name the folder to run it.
"""

from __future__ import annotations

import email
import email.policy
import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from aiosmtpd.controller import Controller

from tests.chaos.infra import KafkaCluster, LocalInfra
from tests.conftest import KAFKA, SERVER_DSN
from tests.support.processes import free_port

SUMMARIES: list[str] = []


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if SUMMARIES:
        terminalreporter.section("chaos summary")
        for line in SUMMARIES:
            terminalreporter.write_line(line)


@pytest.fixture(scope="session")
def scale() -> int:
    value = int(os.environ.get("KPIPULSE_CHAOS_SCALE", "1"))
    assert value >= 1, "KPIPULSE_CHAOS_SCALE must be a positive integer"
    return value


@pytest.fixture
def infra() -> Iterator[LocalInfra]:
    local = LocalInfra(KAFKA, SERVER_DSN)
    problem = local.managed()
    if problem is not None:
        pytest.fail(f"the chaos test only stops infrastructure deploy/local runs: {problem}")
    try:
        yield local
    finally:
        local.restore()


@pytest.fixture
def cluster() -> Iterator[KafkaCluster]:
    """Three Kafka nodes on loopback, started for the test and removed after it."""
    nodes = KafkaCluster()
    try:
        nodes.start()
        yield nodes
    finally:
        nodes.remove()


@dataclass(frozen=True)
class Mail:
    recipients: tuple[str, ...]
    subject: str


class SmtpRecorder:
    """A real SMTP server (aiosmtpd) that records every message it accepted."""

    def __init__(self) -> None:
        self.port = free_port()
        self._lock = threading.Lock()
        self._mails: list[Mail] = []
        self._controller = Controller(self, hostname="127.0.0.1", port=self.port)

    async def handle_DATA(self, _server: Any, _session: Any, envelope: Any) -> str:
        message = email.message_from_bytes(envelope.original_content, policy=email.policy.default)
        with self._lock:
            self._mails.append(
                Mail(tuple(envelope.rcpt_tos), str(message["Subject"]).strip())
            )
        return "250 Message accepted for delivery"

    def start(self) -> SmtpRecorder:
        self._controller.start()
        return self

    def stop(self) -> None:
        self._controller.stop()

    @property
    def mails(self) -> list[Mail]:
        with self._lock:
            return list(self._mails)


@pytest.fixture
def smtp() -> Iterator[SmtpRecorder]:
    recorder = SmtpRecorder().start()
    yield recorder
    recorder.stop()
