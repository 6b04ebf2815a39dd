"""Write-key lookups cached in memory, so the hot path never waits on the database.

Entries live ``ttl`` seconds: a key revoked on another instance stops working there
within the TTL (this instance forgets it at once). Unknown keys are cached briefly too,
so a flood of bad keys cannot turn into a flood of queries.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from services.ingest.domain.writekeys import hash_key, looks_like_key
from services.ingest.repository import WriteKey
from services.ingest.stores import WriteKeyStore

_MAX_ENTRIES = 10_000
_NEGATIVE_TTL_S = 1.0


class KeyCache:
    def __init__(
        self,
        repository: WriteKeyStore,
        *,
        ttl_s: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._repository = repository
        self._ttl = ttl_s
        self._clock = clock
        self._entries: dict[str, tuple[float, WriteKey | None]] = {}

    async def lookup(self, key: str) -> WriteKey | None:
        """The key's record (possibly revoked), or None when it does not exist."""
        if not looks_like_key(key):
            return None
        digest = hash_key(key)
        now = self._clock()
        entry = self._entries.get(digest)
        if entry is not None and entry[0] > now:
            return entry[1]
        record = await self._repository.by_hash(digest)
        if len(self._entries) >= _MAX_ENTRIES:
            self._entries.clear()  # crude but bounded; refills from the database
        ttl = self._ttl if record is not None else min(self._ttl, _NEGATIVE_TTL_S)
        self._entries[digest] = (now + ttl, record)
        return record

    def forget(self, key_hash: str) -> None:
        self._entries.pop(key_hash, None)

    def clear(self) -> None:
        self._entries.clear()
