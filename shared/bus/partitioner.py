"""Kafka's default partition of a keyed record, as every Kafka client computes it.

A record with a key goes to ``toPositive(murmur2(key)) % partitions`` (the Java client,
librdkafka's ``murmur2_random``, aiokafka's ``DefaultPartitioner``), so every producer
of a topic puts a key on the same partition. aiokafka's own ``murmur2`` gives the same
hashes but masks every intermediate step; this one reads the key four bytes at a time
and is several times faster (bench/NOTES.md), on a path run once per published record.
"""

from __future__ import annotations

import struct

_SEED = 0x9747B28C
_M = 0x5BD1E995
_MASK = 0xFFFFFFFF


def murmur2(data: bytes) -> int:
    """Kafka's murmur2 of ``data`` as an unsigned 32-bit integer (the Java client's
    ``Utils.murmur2`` is the same bits as a signed int)."""
    length = len(data)
    h = _SEED ^ length
    for word in struct.unpack_from(f"<{length >> 2}I", data):
        k = (word * _M) & _MASK
        k = ((k ^ (k >> 24)) * _M) & _MASK
        h = ((h * _M) & _MASK) ^ k
    rest = length & 3
    if rest:
        h = ((h ^ int.from_bytes(data[length - rest :], "little")) * _M) & _MASK
    h ^= h >> 13
    h = (h * _M) & _MASK
    return h ^ (h >> 15)


def key_partition(key: bytes, partitions: int) -> int:
    """The partition (an index into the topic's sorted partition ids) of ``key``."""
    return (murmur2(key) & 0x7FFFFFFF) % partitions
