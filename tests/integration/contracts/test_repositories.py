"""Contract tests of the repositories: one suite, run on PostgreSQL and on SQLite.

Embedded mode (``kpipulse dev``) runs the same repositories on SQLite; every behaviour
the services rely on must hold on both.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from datasketches import hll_sketch
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.alerts.domain.conditions import Condition
from services.alerts.repository.alerts import AlertRepository
from services.alerts.repository.outbox import NewNotification, OutboxRepository
from services.ingest.repository import WriteKey, WriteKeyRepository
from services.ingest.stores import DeliveryLedger
from services.scoring.domain.aggregates import HLL_LG_K, BucketKey, TermAggregate
from services.scoring.repository import Claim, CurrentValue, PartitionBucket, SeenEvent
from shared.bus.ports import PartitionId
from shared.db.engine import transaction
from shared.db.offsets import offsets_for
from tests.integration.contracts.conftest import scoring_repositories

Sessions = async_sessionmaker[AsyncSession]
T0 = datetime(2026, 11, 2, 10, 0, tzinfo=UTC)


async def test_offsets_round_trip_and_overwrite(sessions: Sessions) -> None:
    repo = offsets_for(sessions, consumer="c1")
    p0, p1 = PartitionId("t", 0), PartitionId("t", 1)
    async with transaction(sessions) as session:
        await repo.save(session, {p0: 10, p1: 3})
    async with transaction(sessions) as session:
        assert await repo.locked(session, [p0, p1]) == {p0: 10, p1: 3}
        await repo.save(session, {p0: 25})
    assert await repo.load([p0, p1, PartitionId("t", 2)]) == {p0: 25, p1: 3}
    assert await offsets_for(sessions, consumer="other").load([p0]) == {}


async def test_event_ids_are_claimed_once(sessions: Sessions) -> None:
    repo = scoring_repositories(sessions).event_ids
    a, b, c = SeenEvent("web", "a"), SeenEvent("web", "b"), SeenEvent("web", "c")
    async with transaction(sessions) as session:
        assert await repo.claim(session, [a, b], T0) == {a, b}
    async with transaction(sessions) as session:
        assert await repo.claim(session, [b, c], T0) == {c}
    async with transaction(sessions) as session:
        assert await repo.prune(session, T0 + timedelta(seconds=1)) == 3
        assert await repo.claim(session, [a], T0) == {a}


async def test_event_ids_are_unique_per_source_only(sessions: Sessions) -> None:
    """A web event with a support event's id must not make the support event vanish."""
    repo = scoring_repositories(sessions).event_ids
    web, support = SeenEvent("web", "t-1"), SeenEvent("support", "t-1")
    async with transaction(sessions) as session:
        assert await repo.claim(session, [web], T0) == {web}
    async with transaction(sessions) as session:
        assert await repo.claim(session, [support, web], T0) == {support}


async def test_buckets_save_load_and_window(sessions: Sessions) -> None:
    repo = scoring_repositories(sessions).buckets
    big = 123_456_789_012_345_678  # micro-units beyond float precision stay exact
    first = PartitionBucket(BucketKey("k", 0, T0), 0)
    second = PartitionBucket(BucketKey("k", 0, T0), 1)
    later = PartitionBucket(BucketKey("k", 1, T0 + timedelta(hours=1)), 0)
    async with transaction(sessions) as session:
        await repo.save(
            session,
            {
                first: TermAggregate(count=2, sum_micros=big, min=1.5, max=9.0),
                second: TermAggregate(count=1, sum_micros=5, min=0.5, max=0.5),
                later: TermAggregate(count=4, sum_micros=0, sketch=b"\x01\x02", sketch_kind="hll"),
            },
        )
    async with transaction(sessions) as session:
        loaded = await repo.load(session, [first, later, PartitionBucket(BucketKey("x", 0, T0), 0)])
        assert loaded[first] == TermAggregate(count=2, sum_micros=big, min=1.5, max=9.0)
        assert loaded[later].sketch == b"\x01\x02" and loaded[later].sketch_kind == "hll"
        assert len(loaded) == 2
        await repo.save(session, {first: TermAggregate(count=3, sum_micros=big + 1)})
    async with sessions() as session:
        window = await repo.buckets(session, "k", T0 - timedelta(seconds=1), T0)
    # Both partitions' rows of the bucket, merged exactly (3 + 1 events).
    assert [(k.term, a.count) for k, a in window.items()] == [(0, 4)]
    assert [a.sum_micros for a in window.values()] == [big + 6]


def _hll(*items: str) -> bytes:
    sketch = hll_sketch(HLL_LG_K)
    for item in items:
        sketch.update(item)
    raw: bytes = sketch.serialize_compact()
    return raw


async def test_buckets_add_merges_deltas_into_stored_buckets(sessions: Sessions) -> None:
    repo = scoring_repositories(sessions).buckets
    big = 123_456_789_012_345_678
    plain = PartitionBucket(BucketKey("k", 0, T0), 0)
    other_partition = PartitionBucket(BucketKey("k", 0, T0), 1)
    sketched = PartitionBucket(BucketKey("d", 0, T0), 0)
    async with transaction(sessions) as session:
        await repo.add(
            session,
            {
                plain: TermAggregate(count=2, sum_micros=big, min=1.5, max=9.0),
                sketched: TermAggregate(count=2, sketch=_hll("a", "b"), sketch_kind="hll"),
            },
        )
    async with transaction(sessions) as session:
        await repo.add(
            session,
            {
                plain: TermAggregate(count=3, sum_micros=7, min=0.25, max=4.0),
                other_partition: TermAggregate(count=1, sum_micros=5),
                sketched: TermAggregate(count=2, sketch=_hll("b", "c"), sketch_kind="hll"),
            },
        )
    async with sessions() as session:
        loaded = await repo.load(session, [plain, other_partition, sketched])
    assert loaded[plain] == TermAggregate(count=5, sum_micros=big + 7, min=0.25, max=9.0)
    assert loaded[other_partition] == TermAggregate(count=1, sum_micros=5)
    merged = loaded[sketched]
    assert (merged.count, merged.sketch_kind) == (4, "hll")
    assert merged.sketch is not None
    assert round(hll_sketch.deserialize(merged.sketch).get_estimate()) == 3


async def test_window_totals_merge_terms_across_partitions(sessions: Sessions) -> None:
    repo = scoring_repositories(sessions).buckets
    big = 123_456_789_012_345_678
    inside, edge = T0 - timedelta(minutes=5), T0
    async with transaction(sessions) as session:
        await repo.add(
            session,
            {
                PartitionBucket(BucketKey("k", 0, inside), 0): TermAggregate(2, big, 1.5, 9.0),
                PartitionBucket(BucketKey("k", 0, edge), 3): TermAggregate(1, 5, -2.0, 0.5),
                PartitionBucket(BucketKey("k", 0, T0 - timedelta(hours=2)), 0): TermAggregate(
                    7, 7, -9.0, 99.0  # before the window
                ),
                PartitionBucket(BucketKey("k", 1, inside), 1): TermAggregate(
                    2, sketch=_hll("a", "b"), sketch_kind="hll"
                ),
                PartitionBucket(BucketKey("k", 1, edge), 2): TermAggregate(
                    2, sketch=_hll("b", "c"), sketch_kind="hll"
                ),
                PartitionBucket(BucketKey("other", 0, edge), 0): TermAggregate(50),
            },
        )
    async with sessions() as session:
        totals = await repo.window_totals(session, "k", T0 - timedelta(hours=1), T0)
        empty = await repo.window_totals(session, "k", T0, T0 + timedelta(hours=1))
        together = await repo.windows_totals(
            session,
            {
                "k": (T0 - timedelta(hours=1), T0),
                "other": (T0, T0 + timedelta(hours=1)),
                "none": (T0 - timedelta(hours=1), T0),
            },
        )
    assert together == {"k": totals, "other": {}, "none": {}}
    async with sessions() as session:
        wide = await repo.windows_totals(session, {"other": (T0 - timedelta(seconds=1), T0)})
        before = await repo.windows_totals(
            session, {"other": (edge - timedelta(hours=1), edge - timedelta(seconds=1))}
        )
    assert wide == {"other": {0: TermAggregate(50)}}
    assert before == {"other": {}}  # each window ends where it says
    assert totals[0] == TermAggregate(3, big + 5, -2.0, 9.0)
    assert (totals[1].count, totals[1].sketch_kind) == (4, "hll")
    assert totals[1].sketch is not None
    assert round(hll_sketch.deserialize(totals[1].sketch).get_estimate()) == 3
    assert empty == {}


async def test_window_totals_merge_hundreds_of_sketch_buckets(sessions: Sessions) -> None:
    """A window of 300 sketch buckets: the windows of many KPIs at once agree with each
    KPI's own window, and the distinct count with the ids put in."""
    repo = scoring_repositories(sessions).buckets
    deltas = {
        PartitionBucket(BucketKey("d", 0, T0 - timedelta(minutes=m)), p): TermAggregate(
            1, sketch=_hll(f"user-{m}-{p}", f"user-{m}"), sketch_kind="hll"
        )
        for m in range(50)
        for p in range(6)
    }
    async with transaction(sessions) as session:
        await repo.add(session, deltas)
    async with sessions() as session:
        alone = await repo.window_totals(session, "d", T0 - timedelta(hours=1), T0)
        together = await repo.windows_totals(session, {"d": (T0 - timedelta(hours=1), T0)})
    estimates = []
    for totals in (alone, together["d"]):
        assert totals[0].count == 300
        assert totals[0].sketch is not None
        estimates.append(hll_sketch.deserialize(totals[0].sketch).get_estimate())
    # The same registers either way (the bytes may differ in the order-dependent
    # estimator state a union carries).
    assert estimates[0] == pytest.approx(estimates[1], rel=1e-9)
    assert abs(estimates[0] - 350) < 350 * 0.05  # 300 per-bucket ids and 50 shared ones


async def test_catalog_definitions_history_and_stamp(sessions: Sessions) -> None:
    repo = scoring_repositories(sessions).catalog
    async with transaction(sessions) as session:
        before = await repo.stamp(session)
        assert await repo.insert(session, "kpi_a", {"key": "kpi_a", "n": 1}, managed_by="f", at=T0)
        assert not await repo.insert(session, "kpi_a", {"key": "kpi_a"}, managed_by="f", at=T0)
        await repo.record_change(
            session, kpi_key="kpi_a", action="created", changes=[], actor="cli", at=T0
        )
    async with transaction(sessions) as session:
        assert await repo.active(session) == [{"key": "kpi_a", "n": 1}]
        assert await repo.stamp(session) != before
        assert await repo.managed_keys(session, "f") == ["kpi_a"]
        [row] = (await repo.lock(session, ["kpi_a", "absent"])).values()
        assert (row.version, row.managed_by, row.retired) == (1, "f", False)
        version = await repo.write(session, row, {"key": "kpi_a", "n": 2}, managed_by="api", at=T0)
        assert version == 2
    async with transaction(sessions) as session:
        row = (await repo.lock(session, [], shared=["kpi_a"]))["kpi_a"]
        assert (row.definition, row.managed_by) == ({"key": "kpi_a", "n": 2}, "api")
        assert await repo.retire(session, row, T0 + timedelta(minutes=1), managed_by="api") == 3
    async with sessions() as session:
        assert await repo.active(session) == []
        assert await repo.active_rows(session) == {}
        stored = await repo.stored(session, "kpi_a")
        assert stored is not None and stored.retired and stored.version == 3
        [change] = await repo.history(session, "kpi_a")
    assert change["action"] == "created" and change["at"] == T0


async def test_current_value_claim_limits_publishing(sessions: Sessions) -> None:
    repo = scoring_repositories(sessions).current

    def value(status: str, at: datetime, number: float = 1.0) -> CurrentValue:
        return CurrentValue("kpi", number, None, None, status, 50.0, at, at)

    async def claim(status: str, at: datetime, number: float = 1.0) -> bool:
        async with transaction(sessions) as session:
            claimed = await repo.claim_publications(
                session, [Claim(value(status, at, number), not_since=at - timedelta(minutes=1))]
            )
        return claimed == {"kpi"}

    assert await claim("below_target", T0)
    assert not await claim("below_target", T0 + timedelta(seconds=30), 2.0)  # too soon
    async with sessions() as session:
        fresh = (await repo.all(session))["kpi"]
    # Not published again yet, but the current value is the newest one.
    assert fresh.value == 2.0 and fresh.published_at == T0
    assert await claim("breach", T0 + timedelta(seconds=31))  # status changed: at once
    assert await claim("breach", T0 + timedelta(minutes=2))  # interval passed
    async with sessions() as session:
        current = await repo.all(session)
        history = await repo.recent(session, "kpi", T0 - timedelta(days=1))
    assert current["kpi"].status == "breach"
    assert [s for _, _, s in history] == ["below_target", "breach", "breach"]


async def test_one_claim_call_decides_each_kpi_on_its_own(sessions: Sessions) -> None:
    """A tick claims all its KPIs at once: new ones, ones published too recently, ones
    whose status changed, each decided as if alone."""
    repo = scoring_repositories(sessions).current

    def claim(key: str, status: str, at: datetime, number: float) -> Claim:
        value = CurrentValue(key, number, number, 2.0, status, 40.0, at, at)
        return Claim(value, not_since=at - timedelta(minutes=1))

    async with transaction(sessions) as session:
        first = await repo.claim_publications(
            session, [claim("a", "on_target", T0, 1.0), claim("b", "on_target", T0, 1.0)]
        )
    assert first == {"a", "b"}
    later = T0 + timedelta(seconds=30)
    async with transaction(sessions) as session:
        second = await repo.claim_publications(
            session,
            [
                claim("a", "on_target", later, 2.0),  # too soon: stored, not claimed
                claim("b", "breach", later, 3.0),  # status changed: claimed at once
                claim("c", "no_data", later, 4.0),  # new: claimed
            ],
        )
    assert second == {"b", "c"}
    async with sessions() as session:
        current = await repo.all(session)
        history = {key: await repo.recent(session, key, T0 - timedelta(days=1)) for key in "abc"}
    assert {k: (v.value, v.status, v.published_at) for k, v in current.items()} == {
        "a": (2.0, "on_target", T0),
        "b": (3.0, "breach", later),
        "c": (4.0, "no_data", later),
    }
    assert current["b"].numerator == 3.0 and current["b"].denominator == 2.0
    assert current["b"].score == 40.0 and current["b"].as_of == later
    assert {k: [(at, v, s) for at, v, s in rows] for k, rows in history.items()} == {
        "a": [(T0, 1.0, "on_target")],
        "b": [(T0, 1.0, "on_target"), (later, 3.0, "breach")],
        "c": [(later, 4.0, "no_data")],
    }


async def test_write_keys_by_hash_and_revocation(sessions: Sessions) -> None:
    repo = WriteKeyRepository()
    record = WriteKey("k1", "web", "site", T0, None, "h1")
    async with transaction(sessions) as session:
        await repo.add(session, record)
        found = await repo.by_hash(session, "h1")
        assert found is not None and found.id == record.id and found.active
        assert await repo.by_hash(session, "nope") is None
        await repo.revoke(session, record.id, now=T0)
        revoked = await repo.by_id(session, record.id)
        assert revoked is not None and not revoked.active
        assert await repo.by_id(session, "missing") is None


async def test_webhook_delivery_claim_rolls_back_with_the_block(sessions: Sessions) -> None:
    ledger = DeliveryLedger(sessions)
    with pytest.raises(RuntimeError):
        async with ledger.claim("hubspot", "d1", now=T0) as fresh:
            assert fresh
            raise RuntimeError("publish failed")
    async with ledger.claim("hubspot", "d1", now=T0) as fresh:
        assert fresh  # the failed attempt left no claim behind
    async with ledger.claim("hubspot", "d1", now=T0) as fresh:
        assert not fresh
    async with ledger.claim("zendesk", "d1", now=T0) as fresh:
        assert fresh


async def test_long_delivery_ids_with_one_prefix_stay_apart(sessions: Sessions) -> None:
    ledger = DeliveryLedger(sessions)
    first, second = "x" * 300 + "a", "x" * 300 + "b"
    async with ledger.claim("standard:web", first, now=T0) as fresh:
        assert fresh
    async with ledger.claim("standard:web", second, now=T0) as fresh:
        assert fresh  # not mistaken for a replay of the first
    async with ledger.claim("standard:web", second, now=T0) as fresh:
        assert not fresh


async def test_outbox_claims_leases_and_counts_uncertain_resends(sessions: Sessions) -> None:
    alerts, outbox = AlertRepository(), OutboxRepository()
    async with transaction(sessions) as session:
        alert_id = await alerts.open(
            session,
            kpi_key="kpi",
            condition=Condition.BELOW_MINIMUM,
            severity="critical",
            dedupe_key="kpi:below:1",
            open_key="kpi:below",
            value=1.0,
            now=T0,
        )
        assert alert_id is not None
        await outbox.enqueue(
            session,
            [NewNotification(alert_id, "email", "a@example.com", "firing", {"subject": "x"})],
            T0,
        )
    lease = T0 + timedelta(minutes=1)
    async with transaction(sessions) as session:
        [row] = await outbox.claim_due(session, now=T0, limit=10, lease_until=lease, token="w1")
        assert row.status == "sending" and row.attempts == 1
    async with transaction(sessions) as session:
        assert (
            await outbox.claim_due(session, now=T0, limit=10, lease_until=lease, token="w2") == []
        )
        # The worker died mid-send: once the lease expires the row is re-queued, and
        # counted as a resend whose first outcome is unknown.
        assert await outbox.release_expired_leases(session, lease + timedelta(seconds=1)) == [
            (row.id, "email")
        ]
    async with transaction(sessions) as session:
        [again] = await outbox.claim_due(
            session,
            now=lease + timedelta(seconds=1),
            limit=10,
            lease_until=lease + timedelta(minutes=2),
            token="w3",
        )
        assert again.uncertain_resends == 1 and again.attempts == 2
        assert not await outbox.finish(session, again.id, token="w1", status="sent", now=T0)
        assert await outbox.finish(session, again.id, token="w3", status="sent", now=T0)
