"""Names and times as the envelope wants them, from whatever a source sends."""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime

_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")
_NON_WORD = re.compile(r"[^a-z0-9]+")
_MAX_TYPE = 64


def snake_case(name: str) -> str:
    """"Trial Started" → "trial_started", "dealCreated" → "deal_created".

    The envelope's type pattern is ``^[a-z][a-z0-9_]{0,63}$``; a name that starts with
    a digit is prefixed rather than refused, because the source decides its names.
    Returns "" when nothing usable is left.
    """
    spaced = _CAMEL.sub("_", name.strip())
    snake = _NON_WORD.sub("_", spaced.lower()).strip("_")
    if snake and not snake[0].isalpha():
        snake = "e_" + snake
    return snake[:_MAX_TYPE].rstrip("_")


def parse_time(value: object) -> datetime | None:  # noqa: PLR0911 - one return per shape
    """ISO 8601 strings or epoch numbers (seconds, or milliseconds when that large).

    Naive times are read as UTC: every source we map documents UTC. ``None`` when the
    value is absent or unreadable, so callers decide whether that is an error.
    """
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float):
        seconds = value / 1000 if value > 1e11 else value
        try:
            return datetime.fromtimestamp(seconds, UTC)
        except (OverflowError, OSError, ValueError):
            return None
    if isinstance(value, str):
        text = value.strip()
        # ASCII only: str.isdigit() accepts "²", which int() refuses; and no more digits
        # than an epoch in milliseconds has (int() refuses over 4300 digits).
        if text.isascii() and text.isdigit():
            return parse_time(int(text)) if len(text) <= 18 else None
        try:
            parsed = datetime.fromisoformat(text)
        except ValueError:
            return None
        return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)
    if isinstance(value, datetime):
        return value if value.tzinfo is not None else value.replace(tzinfo=UTC)
    return None


def as_number(value: object) -> float | None:
    """A finite number, or None (bools and strings are not amounts)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    number = float(value)
    return number if math.isfinite(number) else None
