"""Merging the records of concurrent publish calls into per-partition batches (pure).

Producing one Kafka batch per partition costs far less than one ``send()`` per record,
but a partition can only take one batch at a time. So each partition has one queue:
every publish call adds its records for that partition as a ``Ticket``, and the
producer's one sender repeatedly takes whatever is queued (up to a byte budget) as
one ``Batch`` per partition. A ticket is done when every one of its records was in a batch that the
broker acknowledged; a large ticket may be split over several batches.

Nothing here does I/O or knows asyncio: the sender (``shared.bus.kafka_sender``) owns
the waiting, this module only the bookkeeping, so it can be tested exhaustively.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from shared.bus.partitioner import key_partition, murmur2
from shared.bus.ports import OutgoingRecord

W = TypeVar("W")

# Bytes a record adds to a v2 record batch besides its key, value and header bytes:
# varints for length, attributes, timestamp and offset deltas, key and value lengths
# and the header count (at most 5 bytes each), plus two per header for its lengths.
RECORD_OVERHEAD = 32
HEADER_OVERHEAD = 10


def record_size(record: OutgoingRecord) -> int:
    """An upper bound of the bytes ``record`` takes in a record batch."""
    size = RECORD_OVERHEAD + len(record.value) + (len(record.key) if record.key else 0)
    for name, value in record.headers:
        size += HEADER_OVERHEAD + len(name.encode()) + len(value)
    return size


def record_sizes(records: Sequence[OutgoingRecord]) -> list[int]:
    """``record_size`` of each record (inlined for the common header-less record:
    this runs once per published record)."""
    return [
        record_size(r) if r.headers else RECORD_OVERHEAD + len(r.value) + len(r.key or b"")
        for r in records
    ]


def partition_of(record: OutgoingRecord, index: int, partitions: int) -> int:
    """The partition index for ``record``: Kafka's default partition of its key
    (``shared.bus.partitioner``), so every producer of the topic puts a key on the same
    partition; keyless records are spread by their position in the call.
    """
    if record.key is not None:  # an empty key is a key, as for Kafka's clients
        return key_partition(record.key, partitions)
    return index % partitions


def split_by_partition(
    records: Sequence[OutgoingRecord], partitions: int
) -> dict[int, list[OutgoingRecord]]:
    """The records of one publish call grouped by partition index, in their order."""
    groups: dict[int, list[OutgoingRecord]] = {}
    for index, record in enumerate(records):
        key = record.key  # partition_of, inlined: this runs once per published record
        partition = (
            (murmur2(key) & 0x7FFFFFFF) % partitions if key is not None else index % partitions
        )
        group = groups.get(partition)
        if group is None:
            groups[partition] = [record]
        else:
            group.append(record)
    return groups


@dataclass(eq=False, slots=True)
class Ticket(Generic[W]):
    """One publish call's records for one partition, and whoever waits for their ack."""

    records: Sequence[OutgoingRecord]
    waiter: W
    sizes: list[int]  # record_size of each record
    remaining: int  # bytes of the records not placed in a batch yet
    taken: int = 0  # records already placed in a batch
    unacked: int = 0  # batches holding some of its records, not acknowledged yet

    @property
    def done(self) -> bool:
        return self.taken == len(self.records) and self.unacked == 0


def ticket(records: Sequence[OutgoingRecord], waiter: W) -> Ticket[W]:
    """A ticket for ``records`` (not queued yet: check its sizes first)."""
    if not records:
        raise ValueError("a ticket needs at least one record")
    sizes = record_sizes(records)
    return Ticket(records, waiter, sizes, sum(sizes))


@dataclass(eq=False, slots=True)
class Batch(Generic[W]):
    """Records to produce as one batch, and the tickets that have records in it."""

    records: list[OutgoingRecord] = field(default_factory=list)
    tickets: list[Ticket[W]] = field(default_factory=list)
    size: int = 0


class PartitionQueue(Generic[W]):
    """The tickets of one partition not yet fully placed in a batch, oldest first."""

    def __init__(self, *, max_batch_bytes: int) -> None:
        self._max_batch_bytes = max_batch_bytes
        self._tickets: deque[Ticket[W]] = deque()

    def add(self, records: Sequence[OutgoingRecord], waiter: W) -> Ticket[W]:
        return self.put(ticket(records, waiter))

    def put(self, queued: Ticket[W]) -> Ticket[W]:
        self._tickets.append(queued)
        return queued

    def __bool__(self) -> bool:
        return bool(self._tickets)

    def __len__(self) -> int:
        return len(self._tickets)

    def __iter__(self) -> Iterator[Ticket[W]]:
        return iter(self._tickets)

    def take(self) -> Batch[W]:
        """The oldest queued records, up to the byte budget (always at least one record).

        Records keep their order; a ticket whose records do not all fit stays at the
        head of the queue with the rest, so the next batch continues it.
        """
        batch: Batch[W] = Batch()
        budget = self._max_batch_bytes
        while self._tickets:
            head = self._tickets[0]
            start, end, size = head.taken, len(head.records), head.remaining
            if batch.size + size > budget:
                # Only part of it fits: place its records one by one up to the budget
                # (at least one when the batch is still empty).
                end, size = start, 0
                for record_bytes in head.sizes[start:]:
                    if (batch.records or end > start) and batch.size + size + record_bytes > budget:
                        break
                    size += record_bytes
                    end += 1
            if end > start:
                batch.records.extend(head.records[start:end])
                batch.size += size
                head.taken = end
                head.remaining -= size
                head.unacked += 1
                batch.tickets.append(head)
            if head.taken < len(head.records):
                break  # the batch is full
            self._tickets.popleft()
        return batch

    def drain(self) -> list[Ticket[W]]:
        """Remove and return every queued ticket (the partition failed)."""
        tickets = list(self._tickets)
        self._tickets.clear()
        return tickets


def acknowledged(batch: Batch[W]) -> list[Ticket[W]]:
    """Record that ``batch`` was acknowledged; return the tickets it completed."""
    completed = []
    for ticket in batch.tickets:
        ticket.unacked -= 1
        if ticket.done:
            completed.append(ticket)
    return completed
