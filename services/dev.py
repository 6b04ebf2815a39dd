"""``kpipulse dev``: ingest, scoring and alerts in one process on embedded defaults.

SQLite (a file) stands in for PostgreSQL and the embedded SQLite log for Kafka, behind
the same ports as the real adapters, so everything above them is the production code.
Alert emails go to a local SMTP sink that writes each message to ``<data-dir>/mail/``.
Requests are dispatched to the service whose routes match, so each keeps its own
middleware and error handling; they share one Prometheus registry at ``/metrics``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import secrets
import socket
from collections.abc import Sequence
from datetime import UTC, datetime
from email import message_from_bytes
from email.header import decode_header, make_header
from pathlib import Path
from typing import Any

import orjson
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session
from fastapi import FastAPI
from pydantic import SecretStr
from starlette.routing import Match
from starlette.types import Receive, Scope, Send

from services.alerts import bootstrap as alerts_bootstrap
from services.ingest import bootstrap as ingest_bootstrap
from services.ingest.domain.writekeys import hash_key
from services.ingest.keys import create_key
from services.ingest.stores import WriteKeyStore
from services.scoring import bootstrap as scoring_bootstrap
from shared.bootstrap import Adapters
from shared.contracts.events import SOURCES
from shared.db.engine import create_engine, create_session_factory
from shared.db.migrate import upgrade
from shared.identity.domain import new_password
from shared.identity.service import IdentityService
from shared.logging import configure_logging
from shared.serve import serve
from shared.settings import Settings

DEFAULT_DATA_DIR = Path(".cache/dev")
FIRST_ADMIN = "admin@kpipulse.local"


def register(sub: Any) -> None:
    dev = sub.add_parser("dev", help="run the whole platform in one process, embedded storage")
    dev.add_argument("--host", default="127.0.0.1")
    dev.add_argument("--port", type=int, default=8000)
    dev.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR)
    dev.set_defaults(run=_run)


def dev_settings(settings: Settings, data_dir: Path, host: str, port: int, token: str) -> Settings:
    data_dir = data_dir.resolve()
    url = f"http://{host}:{port}"
    # The example catalog has webhook owners: sign their alerts with a secret of this
    # data folder's own (unless one is configured).
    webhook_secret = settings.alerts.webhook_secret.get_secret_value() or _stored_secret(
        data_dir / "alerts-webhook-secret"
    )
    changes: dict[str, Any] = {
        "environment": "dev",
        "admin_token": SecretStr(token),
        "database": settings.database.model_copy(
            update={"url": f"sqlite+aiosqlite:///{data_dir / 'kpipulse.db'}"}
        ),
        "kafka": settings.kafka.model_copy(
            update={"bootstrap_servers": f"embedded:{data_dir / 'bus.db'}", "topic_prefix": ""}
        ),
        "scoring": settings.scoring.model_copy(update={"alerts_api": ""}),
        "alerts": settings.alerts.model_copy(
            update={
                "scorecard_url": f"{url}/",
                "public_url": url,
                "webhook_secret": SecretStr(webhook_secret),
            }
        ),
    }
    return settings.model_copy(update=changes)


class MailSink:
    """An SMTP server on 127.0.0.1 that files every message it receives (dev only)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)

    async def handle_DATA(self, _server: SMTP, _session: Session, envelope: Envelope) -> str:
        raw = envelope.original_content or b""
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S.%f")
        path = self.folder / f"{stamp}.eml"
        path.write_bytes(raw)
        subject = str(make_header(decode_header(message_from_bytes(raw).get("Subject", ""))))
        print(f"mail to {', '.join(envelope.rcpt_tos)}: {subject} ({path})", flush=True)
        return "250 OK"


class ServiceDispatcher:
    """Routes each request to the first service with a matching route (else the last)."""

    def __init__(self, apps: Sequence[FastAPI]) -> None:
        self._apps = list(apps)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        await self._pick(scope)(scope, receive, send)

    def _pick(self, scope: Scope) -> FastAPI:
        partial: FastAPI | None = None
        for app in self._apps:
            for route in app.router.routes:
                match, _ = route.matches(scope)
                if match == Match.FULL and getattr(route, "path", "") != "/{path:path}":
                    return app
                if match == Match.PARTIAL and partial is None:
                    partial = app  # right path, wrong method: that app answers 405
        return partial or self._apps[-1]

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        message = await receive()
        assert message["type"] == "lifespan.startup"
        async with contextlib.AsyncExitStack() as stack:
            try:
                for app in self._apps:
                    await stack.enter_async_context(app.router.lifespan_context(app))
            except Exception as exc:
                await send({"type": "lifespan.startup.failed", "message": repr(exc)})
                raise
            await send({"type": "lifespan.startup.complete"})
            await receive()  # lifespan.shutdown
        await send({"type": "lifespan.shutdown.complete"})


async def _dev_keys(settings: Settings, known: dict[str, str]) -> dict[str, str]:
    """One write key per source: the ``known`` ones while still valid, else new ones."""
    engine = create_engine(settings.database)
    try:
        repository = WriteKeyStore(create_session_factory(engine))
        keys: dict[str, str] = {}
        for source in SOURCES:
            key = known.get(source)
            record = await repository.by_hash(hash_key(key)) if key else None
            if key is None or record is None or not record.active:
                _, key = await create_key(
                    repository, source=source, name=f"dev-{source}", now=datetime.now(UTC)
                )
            keys[source] = key
    finally:
        await engine.dispose()
    return keys


def _stored_secret(path: Path, make: Any = lambda: secrets.token_urlsafe(24)) -> str:
    """A secret kept in the dev data folder (owner-only), made on first use."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(make())
        path.chmod(0o600)
    return path.read_text().strip()


def _admin_token(settings: Settings, path: Path) -> str:
    configured = settings.admin_token.get_secret_value()
    return configured or _stored_secret(path)


async def _first_admin(settings: Settings, password: str) -> bool:
    """Create the first admin when there is no admin yet; whether it was created now."""
    engine = create_engine(settings.database)
    try:
        made = await IdentityService(create_session_factory(engine)).ensure_admin(
            FIRST_ADMIN, password
        )
    finally:
        await engine.dispose()
    return made is not None


def build_app(settings: Settings) -> ServiceDispatcher:
    # One database, one bus and one metrics registry for the three services.
    adapters = Adapters.connect(settings, client_id="kpipulse-dev")
    ingest = ingest_bootstrap.build(settings, adapters)
    alerts = alerts_bootstrap.build(settings, adapters)
    scoring = scoring_bootstrap.build(settings, adapters)
    # Scoring last: it owns the page, /healthz, /readyz, /metrics and unknown paths.
    return ServiceDispatcher([ingest, alerts, scoring])


def _run(args: argparse.Namespace, settings: Settings) -> int:
    data_dir: Path = args.data_dir
    data_dir.mkdir(parents=True, exist_ok=True)
    configure_logging("dev", settings.log_level)
    token = _admin_token(settings, data_dir / "admin-token")
    settings = dev_settings(settings, data_dir, args.host, args.port, token)
    upgrade(settings.database.url)
    # Plain keys are kept only here, in the ignored dev folder, so restarts reuse them.
    keys_file = data_dir / "dev-keys.json"
    known = orjson.loads(keys_file.read_bytes()) if keys_file.exists() else {}
    keys = asyncio.run(_dev_keys(settings, known))
    keys_file.write_bytes(orjson.dumps(keys, option=orjson.OPT_INDENT_2))
    keys_file.chmod(0o600)
    # Dev only: the first admin's password is kept in the data folder, so the page's
    # sign-in works after a restart without a forced change.
    password_file = data_dir / "admin-password"
    admin_password = _stored_secret(password_file, new_password)
    asyncio.run(_first_admin(settings, admin_password))
    smtp_port = _free_port()
    controller = Controller(MailSink(data_dir / "mail"), hostname="127.0.0.1", port=smtp_port)
    controller.start()
    try:
        settings = settings.model_copy(
            update={
                "alerts": settings.alerts.model_copy(
                    update={
                        "smtp": settings.alerts.smtp.model_copy(
                            update={"host": "127.0.0.1", "port": smtp_port}
                        )
                    }
                )
            }
        )
        _banner(args.host, args.port, data_dir, keys, token)
        print(
            f"  sign in:        {FIRST_ADMIN} with the password in {password_file}\n"
            f"  admin password: {admin_password}\n"
            "  more people:    .venv/bin/kpipulse users create --email E --role "
            "admin|editor|viewer --groups sales,leadership  (with KPIPULSE_DATABASE__URL="
            f"{settings.database.url})\n",
            flush=True,
        )
        http = settings.scoring.http.model_copy(update={"host": args.host, "port": args.port})
        serve(build_app(settings), http)
    finally:
        controller.stop()
    return 0


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _banner(host: str, port: int, data_dir: Path, keys: dict[str, str], token: str) -> None:
    url = f"http://{host}:{port}"
    lines = [
        "",
        "KPI Pulse is running in one process (SQLite + embedded log).",
        f"  scorecard:      {url}/",
        f"  API docs:       {url}/docs",
        f"  metrics:        {url}/metrics",
        f"  data folder:    {data_dir}",
        f"  alert emails:   {data_dir / 'mail'} (one .eml file each, also printed here)",
        *[f"  write key {source}: {key}" for source, key in keys.items()],
        f"  admin token: {token}",
        f"  simulate:       .venv/bin/kpipulse simulate --url {url} "
        f"--keys-file {data_dir / 'dev-keys.json'} --scenario complaints_spike",
        "",
    ]
    print("\n".join(lines), flush=True)
