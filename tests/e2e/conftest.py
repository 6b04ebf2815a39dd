"""The three services as real processes, for e2e tests that talk to them over HTTP.

``stack`` starts ``kpipulse ingest``, ``kpipulse scoring`` and ``kpipulse alerts`` on
free ports against the session's test database, with a topic prefix and consumer groups
of their own and the example catalog, creates one write key per source with
``kpipulse keys create``, and stops the processes when the e2e package is done (before
the integration tests, which share the database, start). It logs at DEBUG so that the
log checks see everything. Tests that need a stack of their own (other settings, or one
they may kill) use ``running_stack()`` with extra environment.
"""

from __future__ import annotations

import base64
import os
import re
import subprocess
import uuid
from collections.abc import Iterator, Mapping
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import orjson
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from playwright.sync_api import Browser, sync_playwright

from shared.contracts.events import SOURCES
from shared.settings import Settings
from tests.conftest import ADMIN_TOKEN
from tests.e2e.browser import chromium_path, launch_chromium
from tests.support.processes import KPIPULSE, REPO, ServiceProcess, free_port, settings_env

EXAMPLE_CATALOG = REPO / "catalog" / "example.yaml"
SERVICES = ("ingest", "scoring", "alerts")
_KEY_LINE = re.compile(r"^key:\s+(\S+)\s*$", re.MULTILINE)


@dataclass(frozen=True)
class WebhookSecrets:
    """Webhook secrets the stack's ingest accepts (plain text, as configured)."""

    standard: str = "whsec_" + base64.b64encode(b"e2e-standard-webhook-key-0123").decode()
    hubspot: str = "e2e-hubspot-secret-0123456789"
    mailchimp: str = "e2e-mailchimp-secret-0123456789"
    zendesk: str = "e2e-zendesk-secret-0123456789"
    sendgrid_private: ec.EllipticCurvePrivateKey = field(
        default_factory=lambda: ec.generate_private_key(ec.SECP256R1())
    )

    def sendgrid_public_b64(self) -> str:
        der = self.sendgrid_private.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        return base64.b64encode(der).decode()

    def standard_for(self, source: str) -> str:
        """Standard Webhooks secret of one source (each source has its own)."""
        if source == "support":
            return self.standard
        return "whsec_" + base64.b64encode(f"e2e-standard-{source}-0123".encode()).decode()

    def env(self) -> dict[str, str]:
        def listed(value: str) -> str:
            return orjson.dumps([value]).decode()

        standard = {source: [self.standard_for(source)] for source in SOURCES}
        return {
            "KPIPULSE_INGEST__STANDARD_WEBHOOK_SECRETS": orjson.dumps(standard).decode(),
            "KPIPULSE_INGEST__HUBSPOT_SECRETS": listed(self.hubspot),
            "KPIPULSE_INGEST__MAILCHIMP_SECRETS": listed(self.mailchimp),
            "KPIPULSE_INGEST__ZENDESK_SECRETS": listed(self.zendesk),
            "KPIPULSE_INGEST__SENDGRID_PUBLIC_KEYS": listed(self.sendgrid_public_b64()),
        }

    def plain_values(self) -> list[str]:
        """Every secret as it could leak (for log checks)."""
        standard = [self.standard_for(source) for source in SOURCES]
        return [*standard, *(s.removeprefix("whsec_") for s in standard), self.hubspot,
                self.mailchimp, self.zendesk]


@dataclass
class Stack:
    """The running services, their write keys and what they were configured with."""

    settings: Settings  # as the processes see it (topic prefix, groups, ports)
    env: dict[str, str]
    processes: dict[str, ServiceProcess]
    write_keys: dict[str, str]  # source -> plain key, as `kpipulse keys create` printed it
    secrets: WebhookSecrets
    admin_token: str = ADMIN_TOKEN
    alerts_webhook_secret: str = ""
    metrics_token: str = ""
    log_dir: Path = field(default_factory=Path)

    def url(self, service: str) -> str:
        return f"http://127.0.0.1:{self.processes[service].port}"

    @property
    def ingest(self) -> str:
        return self.url("ingest")

    @property
    def scoring(self) -> str:
        return self.url("scoring")

    @property
    def alerts(self) -> str:
        return self.url("alerts")

    def admin_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.admin_token}"}

    def create_user(self, email: str, role: str, groups: list[str]) -> dict[str, str]:
        """A user through the admin API: its one-time password and personal token."""
        response = httpx.post(
            f"{self.scoring}/v1/admin/users",
            json={"email": email, "role": role, "groups": groups},
            headers=self.admin_headers(),
            timeout=30,
        )
        assert response.status_code == 201, response.text
        made: dict[str, str] = response.json()
        return made

    def key_headers(self, source: str = "web") -> dict[str, str]:
        return {"Authorization": f"Bearer {self.write_keys[source]}"}

    def logs(self) -> dict[str, str]:
        """Each service's log so far (stdout and stderr)."""
        return {
            name: proc.log_path.read_text(encoding="utf-8", errors="replace")
            for name, proc in self.processes.items()
        }

    def assert_alive(self) -> None:
        """Every process still runs and answers /healthz."""
        for name, proc in self.processes.items():
            assert proc.proc is not None and proc.proc.poll() is None, (
                f"{name} exited ({proc.proc.returncode if proc.proc else None}): "
                f"{proc.log_path.read_text(errors='replace')[-3000:]}"
            )
            response = httpx.get(f"{self.url(name)}/healthz", timeout=5)
            assert response.status_code == 200, f"{name} /healthz: {response.status_code}"


def kpipulse(args: list[str], env: Mapping[str, str], timeout: float = 120) -> str:
    """Run one ``kpipulse`` command to completion; its stdout (fails with its output)."""
    done = subprocess.run(
        [*KPIPULSE, *args],
        env={**os.environ, **env},
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert done.returncode == 0, (
        f"kpipulse {' '.join(args)} exited {done.returncode}:\n{done.stdout}\n{done.stderr}"
    )
    return done.stdout


def create_write_keys(env: Mapping[str, str], name: str) -> dict[str, str]:
    """One write key per source through ``kpipulse keys create`` (run in parallel)."""
    procs = {
        source: subprocess.Popen(
            [*KPIPULSE, "keys", "create", "--source", source, "--name", f"{name}-{source}"],
            env={**os.environ, **env},
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for source in SOURCES
    }
    keys: dict[str, str] = {}
    for source, proc in procs.items():
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, f"keys create --source {source}: {out}\n{err}"
        match = _KEY_LINE.search(out)
        assert match is not None, f"no key in the output of keys create: {out}"
        keys[source] = match.group(1)
    return keys


@contextmanager
def running_stack(
    settings: Settings,
    log_dir: Path,
    *,
    extra_env: Mapping[str, str] | None = None,
    catalog: Path = EXAMPLE_CATALOG,
) -> Iterator[Stack]:
    """Start the three services (topics created, keys made) and stop them afterwards."""
    unique = uuid.uuid4().hex[:8]
    ports = {name: free_port() for name in SERVICES}
    secrets = WebhookSecrets()
    alerts_webhook_secret = f"e2e-alerts-webhook-secret-{unique}"
    metrics_token = f"e2e-metrics-token-{unique}"
    kafka = settings.kafka.model_copy(
        update={"topic_prefix": f"{settings.kafka.topic_prefix}e2e{unique}."}
    )
    scoring = settings.scoring.model_copy(
        update={"catalog_path": catalog, "group_id": f"e2e-scoring-{unique}"}
    )
    alerts = settings.alerts.model_copy(update={"group_id": f"e2e-alerts-{unique}"})
    stack_settings = settings.model_copy(
        update={"kafka": kafka, "scoring": scoring, "alerts": alerts}
    )
    env = {
        **settings_env(stack_settings),
        "KPIPULSE_LOG_LEVEL": "INFO",
        "KPIPULSE_INGEST__HTTP__PORT": str(ports["ingest"]),
        "KPIPULSE_SCORING__HTTP__PORT": str(ports["scoring"]),
        "KPIPULSE_ALERTS__HTTP__PORT": str(ports["alerts"]),
        "KPIPULSE_SCORING__ALERTS_API": f"http://127.0.0.1:{ports['alerts']}",
        # The page (scoring's origin) reads alerts across origins, with its session.
        "KPIPULSE_ALERTS__CORS_ORIGINS": orjson.dumps(
            [f"http://127.0.0.1:{ports['scoring']}"]
        ).decode(),
        "KPIPULSE_ALERTS__SCORECARD_URL": f"http://127.0.0.1:{ports['scoring']}/",
        "KPIPULSE_ALERTS__PUBLIC_URL": f"http://127.0.0.1:{ports['alerts']}",
        "KPIPULSE_ALERTS__WEBHOOK_SECRET": alerts_webhook_secret,
        "KPIPULSE_METRICS_TOKEN": metrics_token,
        # Every test shares one client address and many send bad keys on purpose; the
        # throttle of failed authentications is tested on an app of its own.
        "KPIPULSE_INGEST__AUTH_FAILURE_BURST": "1000000",
        # Every test signs in from 127.0.0.1, some failing on purpose.
        "KPIPULSE_SIGN_IN_FAILURES_PER_ADDRESS": "1000000",
        **secrets.env(),
        **(extra_env or {}),
    }
    kpipulse(["topics", "create", "--timeout", "60"], env)
    write_keys = create_write_keys(env, f"e2e-{unique}")
    processes = {
        name: ServiceProcess([name], env, log_dir, name, ports[name]) for name in SERVICES
    }
    with ExitStack() as cleanup:
        for proc in processes.values():
            proc.start()
            cleanup.callback(proc.terminate)
        for proc in processes.values():
            proc.wait_healthy(timeout=90)
        yield Stack(
            settings=stack_settings,
            env=env,
            processes=processes,
            write_keys=write_keys,
            secrets=secrets,
            alerts_webhook_secret=alerts_webhook_secret,
            metrics_token=metrics_token,
            log_dir=log_dir,
        )


@pytest.fixture(scope="package")
def stack(topics_ready: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """The three services, shared by the e2e tests that do not stop them (see above)."""
    with running_stack(
        topics_ready,
        tmp_path_factory.mktemp("e2e-stack"),
        extra_env={"KPIPULSE_LOG_LEVEL": "DEBUG"},
    ) as running:
        yield running


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Headless Chromium for the page tests of one module (Debian's build)."""
    if chromium_path() is None:
        pytest.fail("Chromium is missing: apt-get install -y chromium")
    with sync_playwright() as playwright:
        browser = launch_chromium(playwright)
        yield browser
        browser.close()
