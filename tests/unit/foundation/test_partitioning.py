"""The producer's partitioner is Kafka's: murmur2 as the Java client computes it.

Other producers of a topic (the Java client, librdkafka's murmur2_random) put a key on
``toPositive(murmur2(key)) % partitions``; the figures are the Java client's own test
vectors (``UtilsTest.testMurmur2``), so a partitioner that differs fails here.
"""

from __future__ import annotations

import pytest
from aiokafka.partitioner import DefaultPartitioner, murmur2
from hypothesis import given
from hypothesis import strategies as st

from shared.bus.partitioner import key_partition
from shared.bus.partitioner import murmur2 as shared_murmur2

JAVA_MURMUR2 = {
    b"21": -973932308,
    b"foobar": -790332482,
    b"a-little-bit-long-string": -985981536,
    b"a-little-bit-longer-string": -1486304829,
    b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8": -58897971,
    b"abc": 479470107,
}


@pytest.mark.parametrize(("key", "signed"), JAVA_MURMUR2.items())
def test_aiokafkas_murmur2_agrees_with_the_java_client(key: bytes, signed: int) -> None:
    assert murmur2(key) == signed & 0xFFFFFFFF


@pytest.mark.parametrize("key", JAVA_MURMUR2)
def test_aiokafkas_default_partitioner_picks_the_java_clients_partition(key: bytes) -> None:
    partitions = list(range(6))
    expected = (JAVA_MURMUR2[key] & 0x7FFFFFFF) % len(partitions)
    assert DefaultPartitioner()(key, partitions, partitions) == expected


def test_the_publishers_partitioner_is_kafkas() -> None:
    for key, signed in JAVA_MURMUR2.items():
        assert shared_murmur2(key) == signed & 0xFFFFFFFF
        assert key_partition(key, 7) == (signed & 0x7FFFFFFF) % 7


@given(st.binary(max_size=300), st.integers(min_value=1, max_value=64))
def test_the_publishers_murmur2_is_aiokafkas(key: bytes, partitions: int) -> None:
    assert shared_murmur2(key) == murmur2(key)
    every = list(range(partitions))
    assert key_partition(key, partitions) == DefaultPartitioner()(key, every, every)
