"""Alembic, driven from code: one history with a branch per service off the foundation."""

from __future__ import annotations

import asyncio
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine

import services

_HERE = Path(__file__).parent
_SERVICES = Path(services.__file__).parent


def alembic_config(database_url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(_HERE / "migrations"))
    locations = [_HERE / "migrations" / "versions"] + [
        _SERVICES / name / "migrations" for name in ("ingest", "scoring", "alerts")
    ]
    cfg.set_main_option("version_locations", " ".join(str(p) for p in locations))
    cfg.set_main_option("path_separator", "space")
    cfg.attributes["database_url"] = database_url
    return cfg


class SchemaOutOfDate(RuntimeError):
    """The database lacks migrations this code needs."""


def require_current_schema(database_url: str) -> None:
    """Fail fast, with the remedy, when the database is behind the code's migrations."""
    cfg = alembic_config(database_url)
    expected = set(ScriptDirectory.from_config(cfg).get_heads())

    def current(connection: Connection) -> set[str]:
        return set(MigrationContext.configure(connection).get_current_heads())

    async def read() -> set[str]:
        engine = create_async_engine(database_url)
        try:
            async with engine.connect() as connection:
                return await connection.run_sync(current)
        finally:
            await engine.dispose()

    applied = asyncio.run(read())
    if applied != expected:
        raise SchemaOutOfDate(
            f"database schema is not up to date (applied: {sorted(applied) or 'none'}, "
            f"needed: {sorted(expected)}); run `kpipulse migrate`"
        )


def upgrade(database_url: str, revision: str = "heads") -> None:
    command.upgrade(alembic_config(database_url), revision)


def downgrade(database_url: str, revision: str = "base") -> None:
    command.downgrade(alembic_config(database_url), revision)
