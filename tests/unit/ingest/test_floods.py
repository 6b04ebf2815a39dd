"""Floods of bad credentials: a bounded cache of unknown keys, a throttle per address."""

from __future__ import annotations

import gzip
import zlib
from datetime import UTC, datetime

import pytest

from services.ingest.api.common import ApiError, _gunzip
from services.ingest.domain.ratelimit import FailureThrottle
from services.ingest.domain.writekeys import generate, hash_key
from services.ingest.keycache import KeyCache
from services.ingest.repository import WriteKey

T0 = datetime(2026, 12, 1, tzinfo=UTC)


class CountingStore:
    def __init__(self, *valid: str) -> None:
        self.records = {
            hash_key(key): WriteKey(f"id-{i}", "web", "k", T0, None, hash_key(key))
            for i, key in enumerate(valid)
        }
        self.queries = 0

    async def by_hash(self, key_hash: str) -> WriteKey | None:
        self.queries += 1
        return self.records.get(key_hash)


async def test_misses_never_evict_a_valid_key() -> None:
    valid = generate("web")
    store = CountingStore(valid)
    cache = KeyCache(store, ttl_s=60, clock=lambda: 0.0, max_unknown=100)
    assert await cache.lookup(valid) is not None
    for _ in range(10_500):
        assert await cache.lookup(generate("web")) is None
    queries = store.queries
    assert await cache.lookup(valid) is not None
    assert store.queries == queries  # answered from memory, after 10,500 misses


async def test_a_repeated_unknown_key_is_looked_up_once_while_remembered() -> None:
    now = [0.0]
    store = CountingStore()
    cache = KeyCache(store, ttl_s=60, clock=lambda: now[0], max_unknown=100)
    bad = generate("web")
    for _ in range(5):
        assert await cache.lookup(bad) is None
    assert store.queries == 1
    now[0] = 2.0  # unknown keys are remembered only briefly: the key may be created
    assert await cache.lookup(bad) is None
    assert store.queries == 2


async def test_the_cache_of_unknown_keys_is_bounded_oldest_first() -> None:
    store = CountingStore()
    cache = KeyCache(store, ttl_s=60, clock=lambda: 0.0, max_unknown=100)
    keys = [generate("web") for _ in range(101)]
    for key in keys:
        await cache.lookup(key)
    assert cache.cached(keys[0]) is not None  # the oldest went: a miss again
    assert cache.cached(keys[-1]) is None  # the newest is remembered as unknown


def test_failures_are_throttled_per_address_then_refill() -> None:
    now = [0.0]
    throttle = FailureThrottle(rate=1.0, burst=3, clock=lambda: now[0], max_addresses=10)
    assert throttle.wait("a") == 0.0
    for _ in range(3):
        throttle.failed("a")
    assert throttle.wait("a") == pytest.approx(1.0)
    assert throttle.wait("b") == 0.0  # another address is not affected
    now[0] = 1.0
    assert throttle.wait("a") == 0.0
    throttle.failed("a")
    assert throttle.wait("a") > 0


def test_the_throttle_remembers_a_bounded_number_of_addresses() -> None:
    throttle = FailureThrottle(rate=1.0, burst=1, clock=lambda: 0.0, max_addresses=2)
    for address in ("a", "b", "c"):
        throttle.failed(address)
    assert throttle.wait("a") == 0.0  # evicted, the oldest
    assert throttle.wait("b") > 0 and throttle.wait("c") > 0


def _members(*payloads: bytes) -> bytes:
    return b"".join(gzip.compress(p) for p in payloads)


def test_every_gzip_member_is_read() -> None:
    assert _gunzip(_members(b'[{"a":1},', b'{"b":2}]'), 1024) == b'[{"a":1},{"b":2}]'
    assert _gunzip(_members(b"one"), 1024) == b"one"


@pytest.mark.parametrize("tail", [b"garbage", b"\x00" * 8, b"\x1f"])
def test_bytes_after_the_gzip_stream_are_refused(tail: bytes) -> None:
    with pytest.raises(ApiError) as refused:
        _gunzip(_members(b"one") + tail, 1024)
    assert refused.value.status == 400 and "gzip" in refused.value.detail


def test_the_decompressed_bound_spans_every_member() -> None:
    with pytest.raises(ApiError) as refused:
        _gunzip(_members(b"x" * 600, b"y" * 600), 1024)
    assert refused.value.status == 413
    bomb = zlib.compress(b"\0" * 10_000_000)  # zlib, not gzip: refused as not gzip
    with pytest.raises(ApiError):
        _gunzip(bomb, 1024)
