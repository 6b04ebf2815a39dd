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


def _origins(values: list[str]) -> tuple[str, ...] | None:
    """The normalised origins, or None after printing what is wrong with one."""
    from services.ingest.domain.origins import OriginError, normalize_origins

    try:
        return normalize_origins(values)
    except OriginError as exc:
        print(f"error: {exc}")
        return None


def keys_create(args: argparse.Namespace, settings: Settings) -> int:
    from services.ingest.keys import create_key

    origins = _origins(args.allowed_origin or [])
    if origins is None:
        return 2
    record, key = _with_repository(
        settings,
        lambda repo: create_key(
            repo, source=args.source, name=args.name, now=datetime.now(UTC),
            allowed_origins=origins,
        ),
    )
    print(f"id:     {record.id}\nsource: {record.source}\nname:   {record.name}")
    if record.allowed_origins:
        print(f"allowed origins: {' '.join(record.allowed_origins)}")
    print(f"key:    {key}")
    print("Store the key now: it is shown only once (only its hash is kept).")
    return 0


def keys_list(_args: argparse.Namespace, settings: Settings) -> int:
    records = _with_repository(settings, lambda repo: repo.all())
    print(f"{'ID':36}  {'SOURCE':8}  {'STATE':8}  CREATED                           NAME")
    for r in records:
        state = "active" if r.active else "revoked"
        origins = f"  (origins: {' '.join(r.allowed_origins)})" if r.allowed_origins else ""
        print(f"{r.id:36}  {r.source:8}  {state:8}  {r.created_at.isoformat():32}  {r.name}"
              f"{origins}")
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


def keys_origins(args: argparse.Namespace, settings: Settings) -> int:
    origins = _origins([] if args.any else args.origins)
    if origins is None:
        return 2
    if not origins and not args.any:
        print("error: name the allowed origins, or pass --any to allow every origin")
        return 2
    record = _with_repository(settings, lambda repo: repo.set_origins(args.id, origins))
    if record is None:
        print(f"no write key with id {args.id}")
        return 1
    shown = " ".join(record.allowed_origins) or "any origin"
    print(f"{record.id} ({record.source}, {record.name}) may be used from: {shown}; running "
          "ingest instances apply it within their key-cache TTL")
    return 0


def register(sub: Any) -> None:
    ingest = sub.add_parser("ingest", help="run the ingest HTTP service")
    ingest.set_defaults(run=_run_service)

    keys = sub.add_parser("keys", help="manage ingest write keys")
    actions = keys.add_subparsers(dest="action", required=True)
    create = actions.add_parser("create", help="create a write key and print it once")
    create.add_argument("--source", required=True, choices=SOURCES)
    create.add_argument("--name", required=True)
    create.add_argument(
        "--allowed-origin", action="append", metavar="ORIGIN",
        help="an origin browsers may use the key from (repeat it; default: any origin)",
    )
    create.set_defaults(run=keys_create)
    origins = actions.add_parser(
        "origins", help="set the origins browsers may use a key from (replaces the list)"
    )
    origins.add_argument("id")
    origins.add_argument("origins", nargs="*", metavar="ORIGIN")
    origins.add_argument("--any", action="store_true", help="allow every origin again")
    origins.set_defaults(run=keys_origins)
    actions.add_parser("list", help="list write keys").set_defaults(run=keys_list)
    revoke = actions.add_parser("revoke", help="revoke a write key")
    revoke.add_argument("id")
    revoke.set_defaults(run=keys_revoke)
