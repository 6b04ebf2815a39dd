"""``kpipulse values import FILE``: reported KPI values from a CSV file, into the database.

The scoring service evaluates them within the KPI's ``update_every`` (it polls; a value
entered over its API is evaluated at once).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path
from typing import Any

from services.scoring.catalog_service import CatalogService
from services.scoring.domain.reported import EntryError
from services.scoring.reported import ReportedValues
from services.scoring.repository import ScoringRepositories
from shared.db.engine import create_engine, create_session_factory
from shared.settings import Settings


def register(sub: Any) -> None:
    values = sub.add_parser("values", help="enter values of reported KPIs")
    actions = values.add_subparsers(dest="action", required=True)
    load = actions.add_parser(
        "import", help="import a CSV file: kpi_key,period_start,value[,note] (all rows or none)"
    )
    load.add_argument("file", type=Path)
    load.add_argument("--actor", default="cli", help="who entered them (recorded in history)")
    load.set_defaults(run=_import)


def _import(args: argparse.Namespace, settings: Settings) -> int:
    try:
        text = args.file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        print(f"{args.file}: {exc}", file=sys.stderr)
        return 1

    async def run() -> list[dict[str, Any]]:
        engine = create_engine(settings.database)
        try:
            sessions = create_session_factory(engine)
            repositories = ScoringRepositories.for_dialect(engine.dialect.name)
            catalog = await CatalogService(
                sessions, repositories.catalog, repositories.buckets
            ).load()
            service = ReportedValues(
                sessions=sessions,
                repository=repositories.reported,
                catalog=lambda: catalog,
                tz=settings.tz,
            )
            return await service.import_csv(text, actor=args.actor)
        finally:
            await engine.dispose()

    try:
        written = asyncio.run(run())
    except EntryError as exc:
        print(f"{args.file}: nothing imported:", file=sys.stderr)
        for problem in exc.problems:
            print(f"  - {problem}", file=sys.stderr)
        return 1
    for row in written:
        was = f" (was {row['previous']:g})" if row["corrected"] else ""
        print(f"{row['kpi']} {row['period_start']}: {row['value']:g}{was}")
    print(f"{len(written)} values imported")
    return 0
