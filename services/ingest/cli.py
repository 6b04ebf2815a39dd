"""``kpipulse ingest`` and ``kpipulse keys create|list|revoke``."""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any, TypeVar

from shared.contracts.events import SOURCES
from shared.settings import Settings

T = TypeVar("T")


def _run_service(_args: argparse.Namespace, settings: Settings) -> int:
    from services.ingest.__main__ import main

    main(settings)
    return 0


def _with_repository(settings: Settings, work: Callable[[Any], Awaitable[T]]) -> T:
    from services.ingest.stores import WriteKeyStore
    from shared.db.engine import create_engine, create_session_factory

    async def run() -> T:
        engine = create_engine(settings.database)
        try:
            return await work(WriteKeyStore(create_session_factory(engine)))
        finally:
            await engine.dispose()

    return asyncio.run(run())


def keys_create(args: argparse.Namespace, settings: Settings) -> int:
    from services.ingest.keys import create_key

    record, key = _with_repository(
        settings,
        lambda repo: create_key(repo, source=args.source, name=args.name, now=datetime.now(UTC)),
    )
    print(f"id:     {record.id}\nsource: {record.source}\nname:   {record.name}")
    print(f"key:    {key}")
    print("Store the key now: it is shown only once (only its hash is kept).")
    return 0


def keys_list(_args: argparse.Namespace, settings: Settings) -> int:
    records = _with_repository(settings, lambda repo: repo.all())
    print(f"{'ID':36}  {'SOURCE':8}  {'STATE':8}  CREATED                           NAME")
    for r in records:
        state = "active" if r.active else "revoked"
        print(f"{r.id:36}  {r.source:8}  {state:8}  {r.created_at.isoformat():32}  {r.name}")
    return 0


def keys_revoke(args: argparse.Namespace, settings: Settings) -> int:
    record = _with_repository(
        settings, lambda repo: repo.revoke(args.id, now=datetime.now(UTC))
    )
    if record is None:
        print(f"no write key with id {args.id}")
        return 1
    print(f"revoked {record.id} ({record.source}, {record.name}); running ingest instances "
          "stop accepting it within their key-cache TTL")
    return 0


def register(sub: Any) -> None:
    ingest = sub.add_parser("ingest", help="run the ingest HTTP service")
    ingest.set_defaults(run=_run_service)

    keys = sub.add_parser("keys", help="manage ingest write keys")
    actions = keys.add_subparsers(dest="action", required=True)
    create = actions.add_parser("create", help="create a write key and print it once")
    create.add_argument("--source", required=True, choices=SOURCES)
    create.add_argument("--name", required=True)
    create.set_defaults(run=keys_create)
    actions.add_parser("list", help="list write keys").set_defaults(run=keys_list)
    revoke = actions.add_parser("revoke", help="revoke a write key")
    revoke.add_argument("id")
    revoke.set_defaults(run=keys_revoke)
