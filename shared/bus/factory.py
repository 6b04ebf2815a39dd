"""Chooses the bus adapter from the settings; the one place services get a bus from."""

from __future__ import annotations

from collections.abc import Sequence

from shared.bus.kafka import KafkaPublisher, KafkaSubscriber
from shared.bus.ports import OffsetStore, Publisher, Subscriber
from shared.settings import KafkaSettings


def create_publisher(settings: KafkaSettings, *, client_id: str) -> Publisher:
    return KafkaPublisher(settings, client_id=client_id)


def create_subscriber(
    settings: KafkaSettings,
    *,
    topics: Sequence[str],
    group_id: str,
    offset_store: OffsetStore | None = None,
    max_batch: int = 5000,
) -> Subscriber:
    return KafkaSubscriber(
        settings,
        topics=topics,
        group_id=group_id,
        offset_store=offset_store,
        max_batch=max_batch,
    )
