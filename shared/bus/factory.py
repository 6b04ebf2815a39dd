"""Chooses the bus adapter from the settings; the one place services get a bus from.

``KPIPULSE_KAFKA__BOOTSTRAP_SERVERS=embedded:PATH`` selects the embedded SQLite log
(single process, ``kpipulse dev``); anything else is a Kafka bootstrap list.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from shared.bus.embedded import EmbeddedLog, EmbeddedPublisher, EmbeddedSubscriber
from shared.bus.kafka import KafkaPublisher
from shared.bus.kafka_consumer import KafkaSubscriber
from shared.bus.ports import OffsetStore, Publisher, Subscriber
from shared.settings import KafkaSettings

EMBEDDED_SCHEME = "embedded:"


def _embedded_log(settings: KafkaSettings) -> EmbeddedLog | None:
    if not settings.bootstrap_servers.startswith(EMBEDDED_SCHEME):
        return None
    path = Path(settings.bootstrap_servers.removeprefix(EMBEDDED_SCHEME))
    return EmbeddedLog.open(path, settings.partitions)


def create_publisher(settings: KafkaSettings, *, client_id: str) -> Publisher:
    log = _embedded_log(settings)
    if log is not None:
        return EmbeddedPublisher(log)
    return KafkaPublisher(settings, client_id=client_id)


def create_subscriber(
    settings: KafkaSettings,
    *,
    topics: Sequence[str],
    group_id: str,
    offset_store: OffsetStore | None = None,
    max_batch: int = 5000,
) -> Subscriber:
    log = _embedded_log(settings)
    if log is not None:
        return EmbeddedSubscriber(
            log, topics=topics, group_id=group_id, offset_store=offset_store, max_batch=max_batch
        )
    return KafkaSubscriber(
        settings,
        topics=topics,
        group_id=group_id,
        offset_store=offset_store,
        max_batch=max_batch,
    )
