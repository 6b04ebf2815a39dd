"""Per-partition merging of concurrent publishes into batches (shared.bus.batching)."""

from __future__ import annotations

import pytest

from shared.bus.batching import (
    PartitionQueue,
    acknowledged,
    partition_of,
    record_size,
    split_by_partition,
)
from shared.bus.partitioner import key_partition
from shared.bus.ports import OutgoingRecord


def _records(prefix: str, count: int, size: int = 10) -> list[OutgoingRecord]:
    return [
        OutgoingRecord(key=f"{prefix}{i}".encode(), value=b"v" * size) for i in range(count)
    ]


def test_record_size_bounds_what_a_record_adds() -> None:
    plain = OutgoingRecord(key=b"k", value=b"x" * 100)
    assert record_size(plain) >= 101
    headed = OutgoingRecord(key=None, value=b"x", headers=(("reason", b"why"),))
    assert record_size(headed) > record_size(OutgoingRecord(key=None, value=b"x")) + 9


def test_equal_keys_share_a_partition_and_keyless_records_spread() -> None:
    a = OutgoingRecord(key=b"same", value=b"1")
    b = OutgoingRecord(key=b"same", value=b"2")
    assert partition_of(a, 0, 6) == partition_of(b, 5, 6) == key_partition(b"same", 6)
    keyless = [OutgoingRecord(key=None, value=b"x") for _ in range(6)]
    assert {partition_of(r, i, 6) for i, r in enumerate(keyless)} == set(range(6))


def test_split_by_partition_keeps_every_record_once_in_order() -> None:
    records = _records("k", 50)
    groups = split_by_partition(records, 4)
    assert sorted(r.key or b"" for g in groups.values() for r in g) == sorted(
        r.key or b"" for r in records
    )
    for index, group in groups.items():
        assert all(partition_of(r, 0, 4) == index for r in group)
        assert group == [r for r in records if r in group]  # original order


def test_concurrent_tickets_merge_into_one_batch() -> None:
    queue: PartitionQueue[str] = PartitionQueue(max_batch_bytes=10_000)
    first = queue.add(_records("a", 3), "first")
    second = queue.add(_records("b", 2), "second")
    batch = queue.take()
    assert [r.key for r in batch.records] == [b"a0", b"a1", b"a2", b"b0", b"b1"]
    assert batch.tickets == [first, second]
    assert not queue
    assert not first.done  # placed, not acknowledged
    assert acknowledged(batch) == [first, second]
    assert first.done and second.done


def test_a_full_batch_leaves_the_rest_of_a_ticket_for_the_next() -> None:
    size = record_size(_records("a", 1)[0])
    queue: PartitionQueue[str] = PartitionQueue(max_batch_bytes=3 * size)
    big = queue.add(_records("a", 5), "big")
    after = queue.add(_records("b", 1), "after")
    first = queue.take()
    assert len(first.records) == 3 and first.tickets == [big]
    second = queue.take()
    assert [r.key for r in second.records] == [b"a3", b"a4", b"b0"]
    assert second.tickets == [big, after]
    # The big ticket is done only when both of its batches are acknowledged.
    assert acknowledged(second) == [after]
    assert not big.done
    assert acknowledged(first) == [big]


def test_a_record_over_the_budget_still_goes_alone() -> None:
    queue: PartitionQueue[str] = PartitionQueue(max_batch_bytes=10)
    ticket = queue.add(_records("a", 2, size=100), "w")
    assert len(queue.take().records) == 1
    assert len(queue.take().records) == 1
    assert ticket.taken == 2 and ticket.unacked == 2


def test_drain_returns_what_never_reached_a_batch() -> None:
    queue: PartitionQueue[str] = PartitionQueue(max_batch_bytes=10_000)
    queue.add(_records("a", 1), "one")
    queue.add(_records("b", 1), "two")
    assert [t.waiter for t in queue] == ["one", "two"]
    assert [t.waiter for t in queue.drain()] == ["one", "two"]
    assert not queue and len(queue) == 0


def test_a_ticket_needs_records() -> None:
    queue: PartitionQueue[str] = PartitionQueue(max_batch_bytes=10)
    with pytest.raises(ValueError, match="at least one record"):
        queue.add([], "w")


def test_record_sizes_match_record_size_with_and_without_headers() -> None:
    from shared.bus.batching import record_sizes

    records = [
        OutgoingRecord(key=b"k", value=b"v" * 7),
        OutgoingRecord(key=None, value=b"v", headers=(("é", b"x"), ("reason", b"why"))),
    ]
    assert record_sizes(records) == [record_size(r) for r in records]


def test_a_ticket_that_only_partly_fits_after_others_is_split_there() -> None:
    size = record_size(_records("a", 1)[0])
    queue: PartitionQueue[str] = PartitionQueue(max_batch_bytes=4 * size)
    small = queue.add(_records("a", 2), "small")
    big = queue.add(_records("b", 4), "big")
    first = queue.take()
    assert [r.key for r in first.records] == [b"a0", b"a1", b"b0", b"b1"]
    assert first.tickets == [small, big] and big.taken == 2
    second = queue.take()
    assert [r.key for r in second.records] == [b"b2", b"b3"]
    assert not queue
