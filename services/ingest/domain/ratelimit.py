"""Token-bucket rate limiting per write key, with an injectable clock.

Buckets live in this process: each ingest instance enforces the limit on what it serves,
so behind a load balancer of N instances a key may send up to N times its limit (the
README says so). Sharing buckets would put a network round trip on every request.

Cost is the number of events in a request, so a batch cannot slip 2,500 events past
a limit meant for events. A request larger than the burst costs the whole burst
rather than being refused forever.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

Clock = Callable[[], float]


@dataclass(slots=True)
class TokenBucket:
    rate: float
    burst: float
    tokens: float
    updated: float

    def take(self, cost: float, now: float) -> float:
        """Take ``cost`` tokens; 0.0 when allowed, else seconds until it would be."""
        self.tokens = min(self.burst, self.tokens + (now - self.updated) * self.rate)
        self.updated = now
        cost = min(cost, self.burst)
        if self.tokens >= cost:
            self.tokens -= cost
            return 0.0
        return (cost - self.tokens) / self.rate


class RateLimiter:
    def __init__(self, *, rate: float, burst: int, clock: Clock) -> None:
        self._rate = rate
        self._burst = float(burst)
        self._clock = clock
        # Keyed by write-key id: bounded by the keys table, never by client input.
        self._buckets: dict[str, TokenBucket] = {}

    def acquire(self, key: str, cost: int = 1) -> float:
        now = self._clock()
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = self._buckets[key] = TokenBucket(self._rate, self._burst, self._burst, now)
        return bucket.take(cost, now)


class FailureThrottle:
    """Failed authentications per client address: a token bucket each, in bounded memory.

    Every failure (an unknown or revoked write key, a webhook signature that does not
    match) takes a token; an address without one is refused before its credential is
    looked at, so guessing keys or secrets costs neither a database query nor a
    signature check. Only the most recently failing addresses are remembered: a flood
    from many addresses evicts the oldest, which then start afresh with a full burst.
    """

    def __init__(self, *, rate: float, burst: int, clock: Clock, max_addresses: int) -> None:
        self._rate = rate
        self._burst = float(burst)
        self._clock = clock
        self._max = max_addresses
        # Insertion order is failure order (a failing address moves to the end).
        self._buckets: dict[str, TokenBucket] = {}

    def wait(self, address: str) -> float:
        """0.0 when ``address`` may try now, else seconds until it may."""
        bucket = self._buckets.get(address)
        if bucket is None:
            return 0.0
        now = self._clock()
        bucket.tokens = min(self._burst, bucket.tokens + (now - bucket.updated) * self._rate)
        bucket.updated = now
        return 0.0 if bucket.tokens >= 1.0 else (1.0 - bucket.tokens) / self._rate

    def failed(self, address: str) -> None:
        now = self._clock()
        bucket = self._buckets.pop(address, None)
        if bucket is None:
            if len(self._buckets) >= self._max:
                del self._buckets[next(iter(self._buckets))]
            bucket = TokenBucket(self._rate, self._burst, self._burst, now)
        bucket.take(1.0, now)
        self._buckets[address] = bucket
