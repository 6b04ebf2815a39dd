"""Why the consumers hold their fetches at the broker: latency with and without it.

A consumer whose handler takes ``--handler-ms`` per batch (plus 10 µs per record; a sleep,
so the machine's noise barely matters) reads a topic fed at a constant ``--rate``; each
record's latency is from its Kafka timestamp to the end of its batch. aiokafka fetches a
partition again only once its buffered records were handed out: answered at once
(``fetch_min_bytes=1``, aiokafka's default), a fetch brings the few records that arrived
since the last one, and those then wait a whole batch in the buffer. Held at the broker
for ``fetch_max_wait_ms`` (with ``fetch_min_bytes`` out of reach), it brings what arrived
during the batch. Settings alternate round by round.

Usage: ``python -m bench.fetch_wait [--rate 5000] [--seconds 6] [--handler-ms 35]
[--waits 25,100]`` (``--waits``: compare these fetch waits instead).
"""

from __future__ import annotations

import argparse
import asyncio
import time
import uuid

import uvloop
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from bench.common import KAFKA, percentile

SETTINGS = (("answered at once", 1, 500), ("held 20 ms", 1 << 20, 20), ("held 30 ms", 1 << 20, 30))
PARTITIONS = 6


async def measure(args: argparse.Namespace, min_bytes: int, max_wait_ms: int) -> list[float]:
    topic = f"bench.fetch-wait.{uuid.uuid4().hex[:8]}"
    admin = AIOKafkaAdminClient(bootstrap_servers=KAFKA)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, PARTITIONS, 1)])
        producer = AIOKafkaProducer(bootstrap_servers=KAFKA, linger_ms=5, acks="all")
        consumer = AIOKafkaConsumer(
            topic, bootstrap_servers=KAFKA, group_id=topic, auto_offset_reset="earliest",
            enable_auto_commit=False, fetch_min_bytes=min_bytes, fetch_max_wait_ms=max_wait_ms,
        )
        await producer.start()
        await consumer.start()
        latencies: list[float] = []
        stopping = asyncio.Event()

        async def consume() -> None:
            while not stopping.is_set():
                batches = await consumer.getmany(timeout_ms=200, max_records=5000)
                records = [r for rs in batches.values() for r in rs]
                if records:
                    await asyncio.sleep(args.handler_ms / 1000 + len(records) * 10e-6)
                    done_ms = time.time() * 1000
                    latencies.extend(done_ms - r.timestamp for r in records)

        task = asyncio.create_task(consume())
        try:
            await asyncio.sleep(1)  # joined and assigned
            payload, sent, t0 = b"x" * 300, 0, time.perf_counter()
            while time.perf_counter() - t0 < args.seconds:
                due = int((time.perf_counter() - t0) * args.rate) - sent
                stamp = int(time.time() * 1000)
                for i in range(due):
                    await producer.send(topic, payload, partition=(sent + i) % PARTITIONS,
                                        timestamp_ms=stamp)
                sent += due
                await asyncio.sleep(0.005)
            await producer.flush()
            await asyncio.sleep(1.5)  # the last batches
        finally:
            stopping.set()
            await task
            await producer.stop()
            await consumer.stop()
        return latencies
    finally:
        await admin.delete_topics([topic])
        await admin.close()


async def run(args: argparse.Namespace) -> None:
    settings: tuple[tuple[str, int, int], ...] = SETTINGS
    if args.waits:
        settings = tuple((f"held {ms} ms", 1 << 20, int(ms)) for ms in args.waits.split(","))
    for round_ in range(args.rounds):
        for name, min_bytes, max_wait_ms in settings:
            got = await measure(args, min_bytes, max_wait_ms)
            print(f"round {round_ + 1}, fetch {name:>16}: {len(got):,} records, "
                  f"p50 {percentile(got, 50):.0f} ms, p99 {percentile(got, 99):.0f} ms",
                  flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=5000)
    parser.add_argument("--seconds", type=float, default=6)
    parser.add_argument("--handler-ms", type=float, default=35)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--waits", default="", help="fetch waits in ms to compare, e.g. 25,100")
    uvloop.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
