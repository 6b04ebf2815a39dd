"""The consumption ceiling: raw aiokafka reading a topic to its end, measuring itself.

Same consumer settings as ``shared.bus.kafka.KafkaSubscriber`` (read_committed, 4 MiB
per partition fetch, batches of up to 5,000) but no group and no work per record beyond
touching it; with ``decode`` it also parses each value with the event contract
(pydantic), which shows how much of the scorer's budget decoding alone takes.
Usage: ``python -m bench.rawconsume TOPIC EXPECTED [decode]``; prints one JSON line.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
import time

import orjson
import uvloop
from aiokafka import AIOKafkaConsumer
from aiokafka.structs import TopicPartition

from bench.common import KAFKA
from shared.contracts.events import EventEnvelope


async def run(topic: str, expected: int, decode: bool) -> dict[str, float]:
    consumer = AIOKafkaConsumer(
        bootstrap_servers=KAFKA,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        isolation_level="read_committed",
        max_partition_fetch_bytes=4 * 1024 * 1024,
    )
    await consumer.start()
    try:
        # The topic is fresh in this client's metadata only after a refresh.
        known = consumer.partitions_for_topic(topic)
        while not known:
            await consumer._client.force_metadata_update()
            known = consumer.partitions_for_topic(topic)
        partitions = [TopicPartition(topic, p) for p in sorted(known)]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        cpu0, wall0 = time.process_time(), time.perf_counter()
        seen = 0
        size = 0
        while seen < expected:
            batches = await consumer.getmany(timeout_ms=200, max_records=5000)
            for records in batches.values():
                for record in records:
                    size += len(record.value)
                    if decode:
                        EventEnvelope.from_bytes(record.value)
            seen += sum(len(r) for r in batches.values())
        cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    finally:
        # Without a group, aiokafka's stop may surface the cancelled coordinator task.
        with contextlib.suppress(asyncio.CancelledError):
            await consumer.stop()
    return {"records": seen, "cpu_s": cpu, "wall_s": wall, "bytes": size}


def main() -> None:
    topic, expected = sys.argv[1], int(sys.argv[2])
    decode = len(sys.argv) > 3 and sys.argv[3] == "decode"
    sys.stdout.write(orjson.dumps(uvloop.run(run(topic, expected, decode))).decode() + "\n")


if __name__ == "__main__":
    main()
