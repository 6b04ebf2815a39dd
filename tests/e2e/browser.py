"""Helpers for the browser tests: the dev server as a subprocess, and Debian's Chromium.

The page is tested against the real platform: ``kpipulse dev`` (ingest, scoring and
alerts in one process on embedded defaults) started on a free port with a fresh data
directory. Chromium is the distribution's package (``apt-get install chromium``), driven
by Playwright through its executable path; Playwright's own browser downloads are never
used, so the tests need no network.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from playwright.sync_api import Browser, ConsoleMessage, Page, Playwright

from tests.support.processes import free_port

REPO = Path(__file__).resolve().parents[2]
CHROMIUM = os.environ.get("KPIPULSE_E2E_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS: tuple[str, ...] = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)
SCREENSHOTS = REPO / ".cache" / "screenshots"

_WRITE_KEY = re.compile(r"write key (?P<source>[a-z_]+):\s*(?P<key>\S+)", re.IGNORECASE)
_ADMIN_TOKEN = re.compile(r"admin token:\s*(?P<token>\S+)", re.IGNORECASE)
_ADMIN_PASSWORD = re.compile(r"admin password:\s*(?P<password>\S+)", re.IGNORECASE)
FIRST_ADMIN = "admin@kpipulse.local"


def dev_command(port: int, data_dir: Path) -> list[str]:
    """``kpipulse dev`` from the venv; ``KPIPULSE_E2E_DEV_COMMAND`` may replace the program."""
    override = os.environ.get("KPIPULSE_E2E_DEV_COMMAND")
    program = shlex.split(override) if override else [str(REPO / ".venv" / "bin" / "kpipulse")]
    return [*program, "dev", "--port", str(port), "--data-dir", str(data_dir)]


@dataclass
class DevServer:
    """A running ``kpipulse dev`` and what it printed at start-up."""

    base_url: str
    process: subprocess.Popen[str]
    write_keys: dict[str, str] = field(default_factory=dict)
    admin_token: str | None = None
    admin_password: str | None = None
    output: list[str] = field(default_factory=list)

    def log_tail(self, lines: int = 40) -> str:
        return "\n".join(self.output[-lines:])

    def _read(self) -> None:
        assert self.process.stdout is not None
        for raw in self.process.stdout:
            line = raw.rstrip("\n")
            self.output.append(line)
            if match := _WRITE_KEY.search(line):
                self.write_keys[match["source"].lower()] = match["key"]
            elif match := _ADMIN_TOKEN.search(line):
                self.admin_token = match["token"]
            elif match := _ADMIN_PASSWORD.search(line):
                self.admin_password = match["password"]

    def admin_headers(self) -> dict[str, str]:
        assert self.admin_token, f"no admin token printed:\n{self.log_tail()}"
        return {"Authorization": f"Bearer {self.admin_token}"}

    def post_events(self, source: str, events: Sequence[Mapping[str, Any]]) -> None:
        """``POST /v1/events`` with the source's write key; every event must be accepted."""
        response = httpx.post(
            f"{self.base_url}/v1/events",
            json={"batch": list(events)},
            headers={"Authorization": f"Bearer {self.write_keys[source]}"},
            timeout=30,
        )
        assert response.is_success, f"{response.status_code}: {response.text}"
        rejected = response.json().get("rejected")
        assert not rejected, f"events rejected: {rejected}"


def _wait_ready(server: DevServer, sources: Sequence[str], timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    last_error = "no answer yet"
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(
                f"kpipulse dev exited with {server.process.returncode}:\n{server.log_tail()}"
            )
        try:
            healthy = httpx.get(f"{server.base_url}/healthz", timeout=2).status_code == 200
        except httpx.HTTPError as exc:
            healthy, last_error = False, repr(exc)
        printed = server.admin_password is not None and server.admin_token is not None
        if healthy and printed and all(source in server.write_keys for source in sources):
            return
        time.sleep(0.25)
    raise TimeoutError(
        f"kpipulse dev not ready after {timeout_s:.0f}s ({last_error}; "
        f"write keys seen: {sorted(server.write_keys)}):\n{server.log_tail()}"
    )


@contextmanager
def run_dev_server(
    data_dir: Path, *, sources: Sequence[str] = ("support",), timeout_s: float = 60
) -> Iterator[DevServer]:
    """Start ``kpipulse dev`` on a free port; ready once /healthz answers and keys are printed."""
    port = free_port()
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen(
        dev_command(port, data_dir),
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        bufsize=1,
    )
    server = DevServer(base_url=f"http://127.0.0.1:{port}", process=process)
    reader = threading.Thread(target=server._read, name="kpipulse-dev-output", daemon=True)
    reader.start()
    try:
        _wait_ready(server, sources, timeout_s)
        yield server
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)
        reader.join(timeout=5)


def chromium_path() -> str | None:
    """The distribution's Chromium, or None when it is not installed."""
    if os.access(CHROMIUM, os.X_OK):
        return CHROMIUM
    return shutil.which("chromium")


def launch_chromium(playwright: Playwright) -> Browser:
    executable = chromium_path()
    if executable is None:
        raise RuntimeError("Chromium is missing: apt-get install -y chromium")
    return playwright.chromium.launch(
        executable_path=executable, args=list(CHROMIUM_ARGS), headless=True
    )


@dataclass
class PageProblems:
    """Console errors and uncaught exceptions seen by a page."""

    console_errors: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)
    failed_requests: list[str] = field(default_factory=list)

    def attach(self, page: Page) -> None:
        page.on("console", self._on_console)
        page.on("pageerror", lambda exc: self.page_errors.append(str(exc)))
        page.on(
            "requestfailed",
            lambda request: self.failed_requests.append(
                f"{request.method} {request.url}: {request.failure}"
            ),
        )

    def _on_console(self, message: ConsoleMessage) -> None:
        if message.type == "error":
            location = message.location
            self.console_errors.append(f"{message.text} ({location.get('url', '?')})")

    def summary(self) -> str:
        return (
            f"console errors: {self.console_errors}\n"
            f"page errors: {self.page_errors}\n"
            f"failed requests: {self.failed_requests}"
        )

    @property
    def clean(self) -> bool:
        return not self.console_errors and not self.page_errors


def sign_in(page: Page, email: str, password: str) -> None:
    """Fill in the page's sign-in form (the page must be showing it)."""
    page.locator("#signin-email").fill(email)
    page.locator("#signin-password").fill(password)
    page.locator("#signin-submit").click()


def screenshot(page: Page, name: str, *, full_page: bool = True) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / name
    page.screenshot(path=str(path), full_page=full_page)
    return path
