"""Rate limiter, names and times, write keys."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from services.ingest.domain.naming import as_number, parse_time, snake_case
from services.ingest.domain.ratelimit import RateLimiter
from services.ingest.domain.writekeys import generate, hash_key, looks_like_key


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_token_bucket_burst_refill_and_wait() -> None:
    clock = FakeClock()
    limiter = RateLimiter(rate=10, burst=20, clock=clock)
    assert limiter.acquire("k", 20) == 0.0
    assert limiter.acquire("k", 5) == pytest.approx(0.5)
    clock.now += 0.5
    assert limiter.acquire("k", 5) == 0.0
    assert limiter.acquire("other", 1) == 0.0  # buckets are per key
    clock.now += 100
    assert limiter.acquire("k", 1000) == 0.0  # capped at the burst, not refused forever
    assert limiter.acquire("k", 1) > 0


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("Trial Started", "trial_started"),
        ("trialStarted", "trial_started"),
        ("Order Completed!", "order_completed"),
        ("contact.creation", "contact_creation"),
        ("3d view", "e_3d_view"),
        ("!!!", ""),
        ("x" * 100, "x" * 64),
    ],
)
def test_snake_case(name: str, expected: str) -> None:
    assert snake_case(name) == expected


def test_parse_time() -> None:
    expected = datetime(2026, 3, 1, tzinfo=UTC)
    assert parse_time("2026-03-01T00:00:00Z") == expected
    assert parse_time("2026-03-01 00:00:00") == expected
    assert parse_time(1772323200) == expected
    assert parse_time(1772323200000) == expected
    assert parse_time("1772323200000") == expected
    assert parse_time("soon") is None
    assert parse_time(True) is None


def test_as_number() -> None:
    assert as_number(3) == 3.0
    assert as_number(True) is None
    assert as_number("3") is None
    assert as_number(float("nan")) is None


def test_write_keys() -> None:
    key = generate("crm")
    assert key.startswith("kp_crm_")
    assert len(key) > 40
    assert generate("crm") != key
    assert hash_key(key) == hash_key(key)
    assert len(hash_key(key)) == 64
    assert looks_like_key(key)
    assert not looks_like_key("Bearer nonsense")
    with pytest.raises(ValueError, match="source"):
        generate("sales")


def test_generated_ids_are_uuid4() -> None:
    import uuid

    from services.ingest.domain.ids import UuidSource

    source = UuidSource()
    ids = [source() for _ in range(1000)]  # spans several refills
    assert len(set(ids)) == 1000
    for text in ids[:300]:
        parsed = uuid.UUID(text)
        assert parsed.version == 4
        assert parsed.variant == uuid.RFC_4122
        assert str(parsed) == text
