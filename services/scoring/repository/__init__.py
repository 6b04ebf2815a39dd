"""Scoring's repositories: every SQL statement of the service, one module per aggregate.

Each repository has a portable implementation (SQLAlchemy Core, runs on SQLite and on
PostgreSQL) and, where PostgreSQL can do the same work in one constant statement, a
PostgreSQL subclass. ``ScoringRepositories.for_dialect`` picks them once, at wiring
time, so no method asks which database it runs on. Repositories never commit: the
caller's unit of work does.
"""

from __future__ import annotations

from dataclasses import dataclass

from services.scoring.repository.buckets import BucketRepository, PartitionBucket
from services.scoring.repository.buckets_pg import PostgresBucketRepository
from services.scoring.repository.catalog import CatalogRepository, StoredKpi
from services.scoring.repository.current import Claim, CurrentRepository, CurrentValue
from services.scoring.repository.current_pg import PostgresCurrentRepository
from services.scoring.repository.event_ids import EventIdRepository, SeenEvent
from services.scoring.repository.event_ids_pg import PostgresEventIdRepository

__all__ = [
    "BucketRepository",
    "CatalogRepository",
    "Claim",
    "CurrentRepository",
    "CurrentValue",
    "EventIdRepository",
    "PartitionBucket",
    "ScoringRepositories",
    "SeenEvent",
    "StoredKpi",
]


@dataclass(frozen=True, slots=True)
class ScoringRepositories:
    buckets: BucketRepository
    event_ids: EventIdRepository
    current: CurrentRepository
    catalog: CatalogRepository

    @classmethod
    def for_dialect(cls, dialect: str) -> ScoringRepositories:
        """The repositories for a database whose SQLAlchemy dialect name is ``dialect``."""
        if dialect == "postgresql":
            return cls(
                PostgresBucketRepository(),
                PostgresEventIdRepository(),
                PostgresCurrentRepository(),
                CatalogRepository(),
            )
        return cls(
            BucketRepository(), EventIdRepository(), CurrentRepository(), CatalogRepository()
        )
