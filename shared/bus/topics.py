"""Creating the deployment's topics, and saying how the existing ones differ from the settings.

A topic is created with the configured partitions, replication factor and
``min.insync.replicas``. An existing topic is never changed (more partitions would move
subjects between partitions; a new replication factor needs a reassignment the operator
plans): its actual layout is reported, with every difference from the settings named.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.errors import KafkaError, TopicAlreadyExistsError, for_code

from shared.settings import KafkaSettings

MIN_ISR = "min.insync.replicas"


class TopicSetupError(Exception):
    """The topics could not be created as configured; the message says why."""


@dataclass(frozen=True)
class TopicState:
    name: str
    created: bool
    partitions: int
    replication_factor: int
    min_insync_replicas: int
    # Differences from the settings, one sentence each; empty when it is as configured.
    differences: tuple[str, ...]


def differences(
    settings: KafkaSettings, partitions: int, replication: int, min_isr: int
) -> tuple[str, ...]:
    """How a topic's layout differs from the settings, one phrase per difference."""
    found = []
    if partitions != settings.partitions:
        found.append(f"{partitions} partitions, settings ask {settings.partitions}")
    if replication != settings.replication_factor:
        found.append(
            f"replication factor {replication}, settings ask {settings.replication_factor}"
        )
    if min_isr != settings.min_insync_replicas:
        found.append(f"{MIN_ISR} {min_isr}, settings ask {settings.min_insync_replicas}")
    return tuple(found)


async def ensure_topics(
    settings: KafkaSettings, topics: Sequence[str], *, timeout_s: float = 60.0
) -> list[TopicState]:
    """Create the topics that are missing; describe every one of them.

    Waits up to ``timeout_s`` for the cluster to answer and to have as many brokers as
    the replication factor needs (a cluster that is still starting has fewer).
    """
    deadline = time.monotonic() + timeout_s
    admin = AIOKafkaAdminClient(
        bootstrap_servers=settings.bootstrap_servers, request_timeout_ms=15_000
    )
    await _start(admin, settings, deadline)
    try:
        await _wait_for_brokers(admin, settings, deadline)
        missing = [t for t in topics if t not in set(await admin.list_topics())]
        if missing:
            await _create(admin, settings, missing)
        return [
            TopicState(
                name=name, created=name in missing, partitions=partitions,
                replication_factor=replication, min_insync_replicas=min_isr,
                differences=differences(settings, partitions, replication, min_isr),
            )
            for name, (partitions, replication, min_isr) in (
                await _describe(admin, topics, deadline)
            ).items()
        ]
    finally:
        await admin.close()


async def _start(admin: AIOKafkaAdminClient, settings: KafkaSettings, deadline: float) -> None:
    while True:
        try:
            await admin.start()
            return
        except (KafkaError, OSError) as exc:
            if time.monotonic() > deadline:
                raise TopicSetupError(
                    f"kafka unreachable at {settings.bootstrap_servers}"
                ) from exc
            await asyncio.sleep(1)


async def _wait_for_brokers(
    admin: AIOKafkaAdminClient, settings: KafkaSettings, deadline: float
) -> None:
    while True:
        brokers = len((await admin.describe_cluster())["brokers"])
        if brokers >= settings.replication_factor:
            return
        if time.monotonic() > deadline:
            raise TopicSetupError(
                f"replication factor {settings.replication_factor} needs as many brokers; "
                f"the cluster at {settings.bootstrap_servers} has {brokers} "
                "(set KPIPULSE_KAFKA__REPLICATION_FACTOR to at most that)"
            )
        await asyncio.sleep(1)


async def _create(
    admin: AIOKafkaAdminClient, settings: KafkaSettings, names: Sequence[str]
) -> None:
    response = await admin.create_topics(
        [
            NewTopic(
                name=name,
                num_partitions=settings.partitions,
                replication_factor=settings.replication_factor,
                topic_configs={MIN_ISR: str(settings.min_insync_replicas)},
            )
            for name in names
        ]
    )
    problems = []
    for name, code, *message in response.topic_errors:
        if code == 0 or for_code(code) is TopicAlreadyExistsError:
            continue  # created meanwhile by another process: described below
        detail = message[0] if message and message[0] else for_code(code).__name__
        problems.append(f"{name}: {detail}")
    if problems:
        raise TopicSetupError("kafka refused to create topics: " + "; ".join(problems))


async def _describe(
    admin: AIOKafkaAdminClient, names: Sequence[str], deadline: float
) -> dict[str, tuple[int, int, int]]:
    """Partitions, replication factor and min.insync.replicas of each topic, by name."""
    while True:
        layout: dict[str, tuple[int, int]] = {}
        for topic in await admin.describe_topics(list(names)):
            partitions = topic["partitions"]
            if topic["error_code"] == 0 and partitions:
                layout[topic["topic"]] = (len(partitions), len(partitions[0]["replicas"]))
        # Metadata of a topic just created reaches every broker a moment later.
        if len(layout) == len(names) or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.5)
    absent = [n for n in names if n not in layout]
    if absent:
        raise TopicSetupError(f"topics not visible after creation: {', '.join(absent)}")
    min_isr = await _min_isr(admin, names, deadline)
    return {n: (*layout[n], min_isr[n]) for n in names}


async def _min_isr(
    admin: AIOKafkaAdminClient, names: Sequence[str], deadline: float
) -> dict[str, int]:
    """Each topic's ``min.insync.replicas`` (every topic has one, its own or the broker's);
    a broker that has not learnt of a topic just created yet answers without it, so those
    are asked again."""
    found: dict[str, int] = {}
    while True:
        errors: dict[str, str] = {}
        responses: list[Any] = await admin.describe_configs([
            ConfigResource(ConfigResourceType.TOPIC, name, configs={MIN_ISR: ""})
            for name in names if name not in found
        ])
        for response in responses:
            for code, message, _type, name, entries in response.resources:
                values = [entry[1] for entry in entries if entry[0] == MIN_ISR]
                if code or not values or values[0] is None:
                    errors[name] = message or (for_code(code).__name__ if code else "no value")
                else:
                    found[name] = int(values[0])
        if not errors:
            return found
        if time.monotonic() > deadline:
            detail = "; ".join(f"{name}: {error}" for name, error in errors.items())
            raise TopicSetupError(f"could not read the topics' {MIN_ISR}: {detail}")
        await asyncio.sleep(0.5)
