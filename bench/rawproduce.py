"""The Kafka-client ceiling: raw aiokafka producing ingest's messages, measuring itself.

Same producer settings as ``shared.bus.kafka.KafkaPublisher`` (acks=all, idempotent,
same linger and batch size) and the same shape of work as ingest under the load
generator: ``concurrency`` requests in flight, each sending ``per_request`` records and
waiting for all their acks. Prints one JSON line: records, CPU seconds, wall seconds.
Usage: ``python -m bench.rawproduce FILE TOPIC PER_REQUEST CONCURRENCY WARMUP_S SECONDS [API]``
where FILE holds ``key<TAB>value`` lines (the envelope bytes ingest would publish) and
API is ``send`` (one ``send()`` per record, the default) or ``batch`` (the client's
cheapest path: ``create_batch``/``send_batch``, one batch per partition).

``send_batch`` takes one queued batch per partition, so concurrent requests cannot each
call it; in ``batch`` mode the requests queue their records and one sender task merges
everything queued into one batch per partition, hands those over together and waits
for their acks, then starts over (after the producer's linger) with what arrived
meanwhile. This is written here independently of ingest's ``shared.bus.kafka_sender``
and kept minimal, so it stays the ceiling to compare ingest against.
"""

from __future__ import annotations

import asyncio
import sys
import time
import zlib

import orjson
import uvloop
from aiokafka import AIOKafkaProducer

from bench.common import KAFKA


async def run(
    path: str,
    topic: str,
    per_request: int,
    concurrency: int,
    warmup: float,
    seconds: float,
    api: str = "send",
) -> dict[str, float]:
    records = []
    for line in open(path, "rb"):  # noqa: ASYNC230, SIM115 - read before the clock starts
        key, _, value = line.rstrip(b"\n").partition(b"\t")
        records.append((key, value))
    producer = AIOKafkaProducer(
        bootstrap_servers=KAFKA,
        client_id="bench-raw",
        acks="all",
        enable_idempotence=True,
        linger_ms=5,
        request_timeout_ms=5000,
        max_batch_size=512 * 1024,
        max_request_size=2 * 1024 * 1024,
    )
    await producer.start()
    counting = False
    sent = 0
    stop = False
    cursor = 0

    partitions = sorted(await producer.partitions_for(topic))

    async def send_each() -> None:
        nonlocal cursor
        futures = []
        for _ in range(per_request):
            key, value = records[cursor % len(records)]
            cursor += 1
            futures.append(await producer.send(topic, value=value, key=key))
        await asyncio.gather(*futures)

    loop = asyncio.get_running_loop()
    queued: list[tuple[bytes, bytes]] = []
    waiting: list[asyncio.Future[None]] = []
    arrived = asyncio.Event()

    async def sender() -> None:
        nonlocal queued, waiting
        while not stop or waiting:
            await arrived.wait()
            await asyncio.sleep(0.005)  # the producer's linger_ms, as ingest uses it
            arrived.clear()
            taken, queued = queued, []
            futures, waiting = waiting, []
            batches = {p: producer.create_batch() for p in partitions}
            deliveries = []
            for key, value in taken:
                # Any stable spread will do for the ceiling; crc32 is C-fast.
                partition = partitions[zlib.crc32(key) % len(partitions)]
                if batches[partition].append(key=key, value=value, timestamp=None) is None:
                    full, batches[partition] = batches[partition], producer.create_batch()
                    full.close()
                    deliveries.append(await producer.send_batch(full, topic, partition=partition))
                    batches[partition].append(key=key, value=value, timestamp=None)
            for p, batch in batches.items():
                if batch.record_count():
                    batch.close()
                    deliveries.append(await producer.send_batch(batch, topic, partition=p))
            await asyncio.gather(*deliveries)
            for future in futures:
                future.set_result(None)

    async def send_batches() -> None:
        nonlocal cursor
        for _ in range(per_request):
            queued.append(records[cursor % len(records)])
            cursor += 1
        done: asyncio.Future[None] = loop.create_future()
        waiting.append(done)
        arrived.set()
        await done

    one_request = send_batches if api == "batch" else send_each

    async def worker() -> None:
        nonlocal sent
        while not stop:
            await one_request()
            if counting:
                sent += per_request

    sending = asyncio.create_task(sender()) if api == "batch" else None
    tasks = [asyncio.create_task(worker()) for _ in range(concurrency)]
    await asyncio.sleep(warmup)
    counting = True
    cpu0, wall0 = time.process_time(), time.perf_counter()
    await asyncio.sleep(seconds)
    counting = False
    cpu1, wall1 = time.process_time(), time.perf_counter()
    stop = True
    await asyncio.gather(*tasks)
    if sending is not None:
        sending.cancel()
    await producer.stop()
    return {"records": sent, "cpu_s": cpu1 - cpu0, "wall_s": wall1 - wall0}


def main() -> None:
    path, topic, per_request, concurrency, warmup, seconds = sys.argv[1:7]
    api = sys.argv[7] if len(sys.argv) > 7 else "send"
    result = uvloop.run(
        run(path, topic, int(per_request), int(concurrency), float(warmup), float(seconds), api)
    )
    sys.stdout.write(orjson.dumps(result).decode() + "\n")


if __name__ == "__main__":
    main()
