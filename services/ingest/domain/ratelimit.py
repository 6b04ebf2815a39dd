"""Token-bucket rate limiting per write key, with an injectable clock.

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
