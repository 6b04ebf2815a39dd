"""Scoring's subcommands: the service, and the catalog tools."""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path
from typing import Any

from services.scoring.catalog_service import (
    CatalogService,
    ManagedElsewhere,
    describe_diff,
    file_source,
)
from services.scoring.domain.catalog import CatalogError, parse_catalog
from services.scoring.repository import ScoringRepositories
from shared.db.engine import create_engine, create_session_factory
from shared.settings import Settings


def register(sub: Any) -> None:
    run = sub.add_parser("scoring", help="run the scoring service")
    run.set_defaults(run=_run)

    catalog = sub.add_parser("catalog", help="manage the KPI catalog")
    actions = catalog.add_subparsers(dest="action", required=True)
    apply = actions.add_parser(
        "apply",
        help="apply a catalog file to the KPIs it manages (shows creates, changes, retires)",
    )
    apply.add_argument("file", type=Path)
    apply.add_argument("--dry-run", action="store_true", help="show the changes, apply nothing")
    apply.add_argument(
        "--adopt",
        action="store_true",
        help="manage from this file the KPIs it names that the API or another file manages",
    )
    apply.add_argument("--actor", default="cli", help="who is applying it (recorded in history)")
    apply.set_defaults(run=_apply)

    check = actions.add_parser("check", help="validate a catalog file without a database")
    check.add_argument("file", type=Path)
    check.set_defaults(run=_check)


def _run(_args: argparse.Namespace, settings: Settings) -> int:
    from services.scoring.__main__ import main

    main(settings)
    return 0


def _check(args: argparse.Namespace, _settings: Settings) -> int:
    try:
        catalog = parse_catalog(args.file.read_text())
    except (OSError, CatalogError) as exc:
        _print_error(args.file, exc)
        return 1
    print(f"{args.file}: {len(catalog)} KPIs, valid")
    return 0


def _apply(args: argparse.Namespace, settings: Settings) -> int:
    try:
        catalog = parse_catalog(args.file.read_text())
    except (OSError, CatalogError) as exc:
        _print_error(args.file, exc)
        return 1

    async def apply() -> list[str]:
        engine = create_engine(settings.database)
        try:
            repositories = ScoringRepositories.for_dialect(engine.dialect.name)
            service = CatalogService(
                create_session_factory(engine), repositories.catalog, repositories.buckets
            )
            written = await service.apply_file(
                catalog,
                source=file_source(args.file),
                actor=args.actor,
                dry_run=args.dry_run,
                conflicts="adopt" if args.adopt else "refuse",
            )
        finally:
            await engine.dispose()
        return describe_diff(written.diff)

    try:
        lines = asyncio.run(apply())
    except ManagedElsewhere as exc:
        print(f"{args.file}: nothing applied: it names KPIs managed elsewhere:", file=sys.stderr)
        for key, owner in exc.owners.items():
            print(f"  - {key}: managed by {owner}", file=sys.stderr)
        print("change them where they are managed, or apply with --adopt to manage them "
              "from this file", file=sys.stderr)
        return 1
    except CatalogError as exc:
        _print_error(args.file, exc)
        return 1
    for line in lines:
        print(line)
    print("dry run: nothing applied" if args.dry_run else "catalog applied")
    return 0


def _print_error(path: Path, exc: Exception) -> None:
    if isinstance(exc, CatalogError):
        print(f"{path}: invalid catalog:", file=sys.stderr)
        for problem in exc.problems:
            print(f"  - {problem}", file=sys.stderr)
    else:
        print(f"{path}: {exc}", file=sys.stderr)
