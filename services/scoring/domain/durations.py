"""Duration strings used by the catalog: ``<integer><unit>`` with unit s, m, h, d or w.

``m`` is minutes (never months: months have no fixed length; use ``review_period: month``
for calendar months). Examples: ``30s``, ``1m``, ``15m``, ``1h``, ``30d``, ``365d``, ``2w``.
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Final

_UNITS: Final[dict[str, int]] = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_PATTERN: Final = re.compile(r"^\s*(\d{1,9})\s*([smhdw])\s*$")
# Far beyond any window or retention the catalog allows (those are checked with their
# own messages); only keeps the arithmetic finite.
_MAX_SECONDS: Final = 100 * 365 * 86400


def parse_duration(value: object) -> timedelta:
    """Parse ``"30d"`` style strings; a ``timedelta`` passes through unchanged."""
    if isinstance(value, timedelta):
        return value
    if not isinstance(value, str):
        raise ValueError("duration must be a string like '1m', '30d' or '365d'")
    match = _PATTERN.match(value)
    if match is None:
        raise ValueError(
            f"invalid duration {value!r}: expected <integer><unit> with unit s, m, h, d or w"
        )
    seconds = int(match.group(1)) * _UNITS[match.group(2)]
    if seconds > _MAX_SECONDS:
        # timedelta itself overflows past 999,999,999 days, as an OverflowError that a
        # validator would let through as a crash instead of a named problem.
        raise ValueError(f"invalid duration {value!r}: longer than {_MAX_SECONDS // 86400}d")
    return timedelta(seconds=seconds)


def format_duration(value: timedelta) -> str:
    """The shortest exact spelling in d, h, m or s (``timedelta(days=14)`` → ``14d``)."""
    seconds = int(value.total_seconds())
    for unit in ("d", "h", "m"):
        size = _UNITS[unit]
        if seconds and seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"
