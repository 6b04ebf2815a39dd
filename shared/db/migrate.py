"""Alembic, driven from code: one history with a branch per service off the foundation."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config

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


def upgrade(database_url: str, revision: str = "heads") -> None:
    command.upgrade(alembic_config(database_url), revision)


def downgrade(database_url: str, revision: str = "base") -> None:
    command.downgrade(alembic_config(database_url), revision)
