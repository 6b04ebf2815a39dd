from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from services.scoring.domain.aggregates import BucketKey, TermAggregate, merge, merge_all
from services.scoring.domain.buckets import bucket_start, bucket_width
from services.scoring.domain.catalog import Catalog
from services.scoring.domain.evaluate import side_value
from services.scoring.domain.fold import Folder, fold
from shared.contracts.events import EventEnvelope

from .factories import T0, event, make_catalog, make_kpi

HCM = ZoneInfo("Asia/Ho_Chi_Minh")


@pytest.mark.parametrize(
    ("window", "width"),
    [
        ("1m", timedelta(seconds=1)),
        ("5m", timedelta(seconds=1)),
        ("7m", timedelta(seconds=10)),
        ("1h", timedelta(minutes=1)),
        ("1d", timedelta(minutes=15)),
        ("7d", timedelta(hours=1)),
        ("16d", timedelta(hours=1)),
        ("17d", timedelta(days=1)),
        ("30d", timedelta(days=1)),
        ("365d", timedelta(days=1)),
    ],
)
def test_bucket_width_rule(window: str, width: timedelta) -> None:
    kpi = make_kpi(window=window, update_every="1s")
    assert bucket_width(kpi) == width
    assert kpi.window / width <= 400


def test_bucket_start_sub_day_is_epoch_aligned_and_day_is_local_midnight() -> None:
    at = datetime(2026, 11, 2, 18, 7, 30, tzinfo=UTC)  # 01:07 on Nov 3 in Ho Chi Minh City
    assert bucket_start(make_kpi(window="1d"), at, HCM) == datetime(2026, 11, 2, 18, 0, tzinfo=UTC)
    day = bucket_start(make_kpi(window="30d"), at, HCM)
    assert day == datetime(2026, 11, 2, 17, 0, tzinfo=UTC)  # Nov 3 00:00 +07
    assert day.tzinfo is UTC


def test_day_buckets_follow_dst_in_berlin() -> None:
    berlin = ZoneInfo("Europe/Berlin")
    kpi = make_kpi(window="30d")
    # 2026-03-29 is 23h long in Berlin: midnight is 23:00 UTC before, 22:00 UTC after.
    assert bucket_start(kpi, datetime(2026, 3, 29, 12, tzinfo=UTC), berlin) == datetime(
        2026, 3, 28, 23, tzinfo=UTC
    )
    assert bucket_start(kpi, datetime(2026, 3, 29, 22, 30, tzinfo=UTC), berlin) == datetime(
        2026, 3, 29, 22, tzinfo=UTC
    )
    # the Folder's per-slot cache must agree with the direct computation around the change
    events = [event(at=datetime(2026, 3, 29, 21, 50, tzinfo=UTC) + timedelta(minutes=m))
              for m in range(0, 30, 5)]
    starts = sorted({key.bucket_start for key in fold(events, make_catalog(kpi), berlin).buckets})
    assert starts == [datetime(2026, 3, 28, 23, tzinfo=UTC), datetime(2026, 3, 29, 22, tzinfo=UTC)]


def test_fold_counts_per_bucket_and_filters_on_source_type_properties() -> None:
    catalog = make_catalog(
        make_kpi(key="signups"),
        make_kpi(key="vn_signups", scope={"properties": {"region": "VN"}}),
        make_kpi(key="any_web", formula={"count": {"source": "web"}}),
    )
    events = [
        event(at=T0, region="VN"),
        event(at=T0 + timedelta(minutes=1), region="US"),
        event(at=T0 + timedelta(minutes=20)),
        event("page_view", at=T0),
        event("signup", source="crm", at=T0),
    ]
    result = fold(events, catalog, UTC)
    t = T0
    assert result.buckets == {
        BucketKey("signups", 0, t): TermAggregate(count=2),
        BucketKey("signups", 0, t + timedelta(minutes=15)): TermAggregate(count=1),
        BucketKey("vn_signups", 0, t): TermAggregate(count=1),
        BucketKey("any_web", 0, t): TermAggregate(count=3),
        BucketKey("any_web", 0, t + timedelta(minutes=15)): TermAggregate(count=1),
    }
    assert result.unmatched == 1  # the crm signup


def test_boolean_property_matches_only_booleans() -> None:
    kpi = make_kpi(formula={"count": {"type": "csat_response", "properties": {"satisfied": True}}})
    events = [
        event("csat_response", source="support", satisfied=True),
        event("csat_response", source="support", satisfied=1),
        event("csat_response", source="support", satisfied="true"),
    ]
    result = fold(events, make_catalog(kpi), UTC)
    assert [agg.count for agg in result.buckets.values()] == [1]
    assert result.unmatched == 2


def test_remembered_matches_keep_booleans_numbers_and_lists_apart() -> None:
    flag = make_kpi(
        key="flag", formula={"count": {"type": "csat_response", "properties": {"satisfied": True}}}
    )
    one = make_kpi(
        key="one", formula={"count": {"type": "csat_response", "properties": {"satisfied": 1}}}
    )
    both = make_kpi(
        key="both",
        formula={
            "count": {"type": "csat_response", "properties": {"satisfied": 1, "tier": "gold"}}
        },
    )
    folder = Folder(make_catalog(flag, one, both), UTC)
    # Numbers first, so a remembered answer for 1 would be wrong for True if reused.
    values: list[object] = [1, 1.0, True, [1], 1, True, {"a": 1}, False]
    events = [event("csat_response", source="support", satisfied=v) for v in values]
    events.append(event("csat_response", source="support", satisfied=1, tier="gold"))
    events.append(event("csat_response", source="support", satisfied=True, tier="gold"))
    result = folder.fold(events)
    counts = {key.kpi_key: agg.count for key, agg in result.buckets.items()}
    assert counts == {"one": 4, "flag": 3, "both": 1}
    assert result.unmatched == 3  # the list, the object and False


def test_type_list_matches_any_of_them() -> None:
    kpi = make_kpi(formula={"count": {"type": ["signup", "trial_started"]}})
    events = [event("signup"), event("trial_started"), event("page_view")]
    assert sum(a.count for a in fold(events, make_catalog(kpi), UTC).buckets.values()) == 2


def test_numeric_terms_skip_and_count_unusable_fields() -> None:
    kpi = make_kpi(
        formula={"average": {"type": "ticket_first_response", "field": "properties.minutes"}}
    )
    events = [
        event("ticket_first_response", source="support", minutes=10),
        event("ticket_first_response", source="support", minutes=20.5),
        event("ticket_first_response", source="support", minutes="30"),
        event("ticket_first_response", source="support", minutes=True),
        event("ticket_first_response", source="support"),
    ]
    result = fold(events, make_catalog(kpi), UTC)
    (aggregate,) = result.buckets.values()
    assert aggregate == TermAggregate(count=2, sum_micros=30_500_000, min=10.0, max=20.5)
    assert aggregate.sum == 30.5
    assert result.skipped == {("signups", 0): 3}


def test_sum_of_value_is_exact_in_micro_units() -> None:
    kpi = make_kpi(formula={"sum": {"type": "payment_received", "field": "value"}})
    events = [event("payment_received", source="crm", value=0.1) for _ in range(10)]
    (aggregate,) = fold(events, make_catalog(kpi), UTC).buckets.values()
    assert aggregate.sum_micros == 1_000_000
    assert aggregate.sum == 1.0


def test_events_older_than_retention_are_refused_with_reason() -> None:
    short = make_kpi(key="short", window="1d", review_period="day")  # retention 3d
    long = make_kpi(key="long", window="30d", review_period="month")  # retention 92d
    now = T0
    old = event(at=now - timedelta(days=10))
    result = Folder(make_catalog(short, long), UTC).fold([old, event(at=now)], now=now)
    assert len(result.refused) == 1
    refusal = result.refused[0]
    assert refusal.event is old
    assert refusal.kpi_keys == ("short",)
    assert refusal.reason == "older than the retention of KPIs: short (3d)"
    assert {key.kpi_key for key in result.buckets} == {"short", "long"}
    assert sum(a.count for k, a in result.buckets.items() if k.kpi_key == "long") == 2
    assert sum(a.count for k, a in result.buckets.items() if k.kpi_key == "short") == 1


def test_ratio_terms_are_kept_apart() -> None:
    kpi = make_kpi(
        formula={
            "ratio": {
                "numerator": {"count": {"type": "trial_started"}},
                "denominator": {"count": {"type": "signup"}},
            }
        }
    )
    events = [event("signup"), event("signup"), event("trial_started")]
    buckets = fold(events, make_catalog(kpi), UTC).buckets
    assert buckets == {
        BucketKey("signups", 0, T0): TermAggregate(count=1),
        BucketKey("signups", 1, T0): TermAggregate(count=2),
    }


def _mixed_catalog() -> Catalog:
    return make_catalog(
        make_kpi(key="n", formula={"count": {"type": "payment_received"}}),
        make_kpi(key="s", formula={"sum": {"type": "payment_received", "field": "value"}}),
        make_kpi(key="lo", formula={"min": {"type": "payment_received", "field": "value"}}),
        make_kpi(key="d", formula={"distinct": {"type": "payment_received",
                                                "field": "subject_id"}}),
        make_kpi(key="p", formula={"percentile": {"type": "payment_received", "field": "value",
                                                  "q": 0.9}}),
    )


def _payments(n: int) -> list[EventEnvelope]:
    rng = random.Random(7)
    return [
        event(
            "payment_received",
            source="crm",
            at=T0 + timedelta(minutes=rng.randrange(0, 24 * 60)),
            value=round(rng.uniform(1, 500), 2),
            subject_id=f"c{rng.randrange(0, 60)}",
        )
        for _ in range(n)
    ]


def _merge_maps(
    *maps: dict[BucketKey, TermAggregate],
) -> dict[BucketKey, TermAggregate]:
    out: dict[BucketKey, TermAggregate] = {}
    for buckets in maps:
        for key, aggregate in buckets.items():
            out[key] = merge(out[key], aggregate) if key in out else aggregate
    return out


def _values(buckets: dict[BucketKey, TermAggregate]) -> dict[BucketKey, tuple[object, ...]]:
    catalog = _mixed_catalog()
    return {
        key: (agg.count, agg.sum_micros, agg.min, agg.max,
              side_value(catalog[key.kpi_key].formula, agg))
        for key, agg in buckets.items()
    }


def test_merging_split_batches_equals_folding_all_at_once() -> None:
    catalog = _mixed_catalog()
    events = _payments(300)
    whole = fold(events, catalog, UTC).buckets
    a, b, c = (fold(events[i::3], catalog, UTC).buckets for i in range(3))
    assert _values(_merge_maps(a, b, c)) == _values(whole)
    assert _values(_merge_maps(c, a, b)) == _values(whole)  # commutative
    assert _values(_merge_maps(_merge_maps(a, b), c)) == _values(_merge_maps(a, _merge_maps(b, c)))


def test_merge_all_of_a_window_matches_pairwise_merges_and_empty_is_none() -> None:
    catalog = _mixed_catalog()
    buckets = fold(_payments(120), catalog, UTC).buckets
    distinct = [agg for key, agg in buckets.items() if key.kpi_key == "d"]
    merged = merge_all(distinct)
    assert merged is not None
    pairwise = distinct[0]
    for agg in distinct[1:]:
        pairwise = merge(pairwise, agg)
    formula = catalog["d"].formula
    assert side_value(formula, merged) == side_value(formula, pairwise)
    assert merged.count == 120
    assert merge_all([]) is None


def test_merge_refuses_mixed_sketch_kinds() -> None:
    with pytest.raises(ValueError, match="cannot merge"):
        merge(TermAggregate(sketch_kind="hll"), TermAggregate(sketch_kind="kll"))


def test_day_start_inside_a_cache_slot_uses_the_exact_midnight() -> None:
    monrovia = ZoneInfo("Africa/Monrovia")  # UTC-0:44:30 until 1972: midnights off the grid
    kpi = make_kpi(window="30d")
    midnight = datetime(1971, 6, 2, 0, 44, 30, tzinfo=UTC)
    before, after = midnight - timedelta(seconds=1), midnight + timedelta(seconds=1)
    starts = {key.bucket_start for key in fold(
        [event(at=before), event(at=after)], make_catalog(kpi), monrovia
    ).buckets}
    assert starts == {midnight - timedelta(days=1), midnight}
    assert bucket_start(kpi, after, monrovia) == midnight


@pytest.mark.parametrize(
    "zone", ["UTC", "Europe/Berlin", "Africa/Monrovia", "Asia/Kathmandu", "America/St_Johns"]
)
def test_counts_tallied_per_batch_equal_bucket_starts_event_by_event(zone: str) -> None:
    """Count terms are added per (match, time slot, day) once per batch; every event must
    still land in the bucket ``bucket_start`` gives it, for every width and time zone
    (DST days, off-grid historical offsets, 45- and 30-minute offsets)."""
    tz = ZoneInfo(zone)
    windows = ["1m", "7m", "1h", "1d", "7d", "30d", "365d"]
    kpis = [make_kpi(key=f"k{i}", window=w) for i, w in enumerate(windows)]
    # Visits only in KPIs of 15-minute buckets and coarser: their slots are 15 minutes.
    kpis += [
        make_kpi(key=f"v{i}", window=w, formula={"count": {"type": "visit"}})
        for i, w in enumerate(["1d", "7d", "30d", "365d"])
    ]
    kpis.append(
        make_kpi(
            key="paid",
            window="1h",
            formula={"count": {"type": "signup", "properties": {"plan": "paid"}}},
        )
    )
    catalog = make_catalog(*kpis)
    rng = random.Random(zone)
    anchors = [
        datetime(1971, 6, 2, 0, 44, 30, tzinfo=UTC),  # Monrovia's off-grid midnight
        datetime(2026, 3, 29, 1, 0, tzinfo=UTC),  # Berlin springs forward
        datetime(2026, 10, 25, 1, 0, tzinfo=UTC),  # and falls back
        datetime(2026, 11, 27, 18, 15, tzinfo=UTC),  # Kathmandu's midnight
    ]
    events = [
        event(
            rng.choice(["signup", "visit"]),
            at=rng.choice(anchors) + timedelta(seconds=rng.uniform(-spread, spread)),
            plan=rng.choice(["paid", "free", 1, True]),
        )
        for spread in [60, 7200] * 2000
    ]
    expected: dict[BucketKey, int] = {}
    for e in events:
        for kpi in kpis:
            if kpi.key.startswith("v") != (e.type == "visit"):
                continue
            if kpi.key == "paid" and e.properties["plan"] != "paid":
                continue
            key = BucketKey(kpi.key, 0, bucket_start(kpi, e.occurred_at, tz))
            expected[key] = expected.get(key, 0) + 1
    folder = Folder(catalog, tz)
    got: dict[BucketKey, int] = {}
    start = 0
    while start < len(events):
        size = rng.randint(1, 700)
        for key, aggregate in folder.fold(events[start : start + size]).buckets.items():
            got[key] = got.get(key, 0) + aggregate.count
        start += size
    assert got == expected
