"""Delivery retry policy: exponential backoff with full jitter, and what is retryable."""

from __future__ import annotations

from collections.abc import Callable


def backoff_s(attempt: int, *, base_s: float, cap_s: float, rand: Callable[[], float]) -> float:
    """Delay before retry number ``attempt`` (1-based): uniform in [0, min(cap, base·2^(n-1))].

    Full jitter spreads retries of many notifications that failed together (an SMTP
    server restart) instead of hammering the receiver in lock-step.
    """
    doublings = min(max(0, attempt - 1), 62)
    ceiling = min(cap_s, base_s * (1 << doublings))
    return max(0.0, min(1.0, rand())) * ceiling


def http_status_retryable(status: int) -> bool:
    """5xx, 408 (timeout) and 429 (rate limited) are worth retrying; other 4xx are final."""
    return status >= 500 or status in (408, 429)


def smtp_code_retryable(code: int) -> bool:
    """SMTP's own convention: 4yz replies are transient, 5yz permanent."""
    return 400 <= code < 500 or code < 0
