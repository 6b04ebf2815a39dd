"""Write keys: ``kp_<source>_<random>``; only a SHA-256 of the key is ever stored.

A plain SHA-256 suffices (no slow KDF) because the key carries 256 random bits: there
is nothing to brute-force, and a fast hash keeps authentication off the hot path.
"""

from __future__ import annotations

import hashlib
import secrets

from shared.contracts.events import SOURCES

PREFIX = "kp_"


def generate(source: str) -> str:
    if source not in SOURCES:
        raise ValueError(f"source must be one of {', '.join(SOURCES)}")
    return f"{PREFIX}{source}_{secrets.token_urlsafe(32)}"


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def looks_like_key(key: str) -> bool:
    """Cheap shape check so junk never reaches the cache or the database."""
    return key.startswith(PREFIX) and 16 <= len(key) <= 200
