"""The adapters a service runs on, made once per process from the settings.

Each service's ``bootstrap.py`` wires its own parts on top of these; ``__main__`` makes
them for one service, ``kpipulse dev`` once for all three (one database, one bus, one
metrics registry), and the tests make them with what they need to observe.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from prometheus_client import CollectorRegistry
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from shared.bus.factory import create_publisher, create_subscriber
from shared.bus.ports import OffsetStore, Publisher, Subscriber
from shared.db.engine import create_engine, create_session_factory
from shared.settings import KafkaSettings, Settings


@dataclass(frozen=True, slots=True)
class Adapters:
    kafka: KafkaSettings
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    publisher: Publisher
    registry: CollectorRegistry

    @classmethod
    def connect(
        cls, settings: Settings, *, client_id: str, publisher: Publisher | None = None
    ) -> Adapters:
        """The database engine, the bus publisher and a fresh registry (nothing is
        contacted yet: engines and publishers connect when first used or started)."""
        engine = create_engine(settings.database)
        return cls(
            kafka=settings.kafka,
            engine=engine,
            sessions=create_session_factory(engine),
            publisher=publisher or create_publisher(settings.kafka, client_id=client_id),
            registry=CollectorRegistry(),
        )

    def subscriber(
        self,
        *,
        topics: Sequence[str],
        group_id: str,
        offset_store: OffsetStore | None = None,
        max_batch: int = 5000,
    ) -> Subscriber:
        return create_subscriber(
            self.kafka,
            topics=topics,
            group_id=group_id,
            offset_store=offset_store,
            max_batch=max_batch,
        )
