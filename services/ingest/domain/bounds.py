"""What ingest bounds beyond the envelope's schema: nesting depth and event time.

The web write key is public, so whatever it can send must be survivable downstream:
an event time of year 9999 (or one that overflows when moved to UTC) breaks the
scorer's buckets, and structures nested hundreds of levels deep exhaust recursion in
the validators and encoders after it. Both are refused here, per event, with the
field and the bound named.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

DEFAULT_EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class Bounds:
    max_future: timedelta = timedelta(hours=24)
    earliest: datetime = DEFAULT_EARLIEST
    max_depth: int = 32


def _hours(delta: timedelta) -> str:
    seconds = delta.total_seconds()
    return f"{seconds / 3600:g} h" if seconds % 3600 == 0 else f"{seconds:g} s"


def time_problem(occurred_at: datetime, received_at: datetime, bounds: Bounds) -> str | None:
    """Why ``occurred_at`` is out of bounds (the reason names field and bound), or None."""
    shown = occurred_at.isoformat()
    # Aware datetimes compare without converting to UTC, which could overflow at the
    # calendar's edges (9999-12-31T23:59:59-14:00 is in year 10000 in UTC).
    if occurred_at > received_at + bounds.max_future:
        return f"occurred_at {shown} is more than {_hours(bounds.max_future)} in the future"
    if occurred_at < bounds.earliest:
        return f"occurred_at {shown} is before the earliest accepted {bounds.earliest.isoformat()}"
    return None


def too_deep(value: Any, limit: int) -> bool:
    """Whether ``value`` nests dicts and lists more than ``limit`` levels deep.

    Iterative, so a structure deep enough to exhaust Python's recursion is measured
    without recursing; a scalar has depth 0, ``{}`` and ``[]`` depth 1.
    """
    if not isinstance(value, dict | list):
        return False
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > limit:
            return True
        children = node.values() if isinstance(node, dict) else node
        for child in children:
            if isinstance(child, dict | list) and child:
                stack.append((child, depth + 1))
            elif isinstance(child, dict | list) and depth + 1 > limit:
                return True
    return False


def depth_problem(item: object, limit: int) -> str | None:
    """The first field of an event (or message) nested deeper than ``limit``, as a reason."""
    if not isinstance(item, dict):
        return None
    for name, value in item.items():
        if too_deep(value, limit):
            return f"{str(name)[:64]}: nested deeper than the limit of {limit} levels"
    return None
