"""Multi-row statements in slices that stay below the databases' parameter limits."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TypeVar

T = TypeVar("T")

# PostgreSQL caps a statement at 32767 parameters; stay well below for multi-row VALUES.
CHUNK = 4000


def chunks(items: Sequence[T], size: int = CHUNK) -> Iterable[Sequence[T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]

