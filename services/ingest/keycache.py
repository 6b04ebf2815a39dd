"""Write-key lookups cached in memory, so the hot path never waits on the database.

Known keys live ``ttl`` seconds: a key revoked on another instance stops working there
within the TTL (this instance forgets it at once). Unknown keys are remembered apart,
briefly and in a bounded LRU of their own, so a flood of bad keys neither turns into a
flood of queries for a repeated key nor evicts a single valid one.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Final, Protocol

from services.ingest.domain.writekeys import hash_key, looks_like_key
from services.ingest.repository import WriteKey

# Known keys are bounded by the keys table, not by clients; this only caps a table of
# extraordinary size (the oldest entry goes, and is read again when next used).
_MAX_KNOWN = 100_000
_NEGATIVE_TTL_S = 1.0


class KeyLookup(Protocol):
    async def by_hash(self, key_hash: str) -> WriteKey | None: ...


class Miss:
    """Not in the cache: the database must be asked."""


MISS: Final = Miss()


class KeyCache:
    def __init__(
        self,
        repository: KeyLookup,
        *,
        ttl_s: float,
        clock: Callable[[], float] = time.monotonic,
        max_unknown: int = 10_000,
    ) -> None:
        self._repository = repository
        self._ttl = ttl_s
        self._clock = clock
        self._max_unknown = max_unknown
        self._known: dict[str, tuple[float, WriteKey]] = {}
        self._unknown: OrderedDict[str, float] = OrderedDict()

    def cached(self, key: str) -> WriteKey | Miss | None:
        """The key's record or None (unknown) when cached and fresh, else ``MISS``."""
        if not looks_like_key(key):
            return None
        digest = hash_key(key)
        now = self._clock()
        known = self._known.get(digest)
        if known is not None and known[0] > now:
            return known[1]
        unknown_until = self._unknown.get(digest)
        if unknown_until is not None and unknown_until > now:
            return None
        return MISS

    async def lookup(self, key: str) -> WriteKey | None:
        """The key's record (possibly revoked), or None when it does not exist."""
        found = self.cached(key)
        if not isinstance(found, Miss):
            return found
        digest = hash_key(key)
        record = await self._repository.by_hash(digest)
        now = self._clock()
        if record is None:
            self._unknown.pop(digest, None)
            if len(self._unknown) >= self._max_unknown:
                self._unknown.popitem(last=False)
            self._unknown[digest] = now + min(self._ttl, _NEGATIVE_TTL_S)
        else:
            self._unknown.pop(digest, None)
            if digest not in self._known and len(self._known) >= _MAX_KNOWN:
                del self._known[next(iter(self._known))]
            self._known[digest] = (now + self._ttl, record)
        return record

    def forget(self, key_hash: str) -> None:
        self._known.pop(key_hash, None)
        self._unknown.pop(key_hash, None)

    def clear(self) -> None:
        self._known.clear()
        self._unknown.clear()
