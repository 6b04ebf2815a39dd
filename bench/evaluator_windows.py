"""What one evaluation of the example catalog costs, whole windows against remembered ones.

Postgres is filled as a scorer that has run for a year leaves it: every bucket of every
window of the example catalog (28 KPIs) in each of 6 partitions, with HyperLogLog and KLL
sketches for the distinct-count and percentile KPIs. Then, in the same run, alternating:

- *whole*: every window summed at once (``BucketRepository.windows_totals``, what the
  evaluator did on every evaluation before ``WindowTotals``);
- *remembered*: ``WindowTotals.read`` once its settled parts are read (an evaluation
  between two bucket bounds: only the open buckets are read).

Both are wall times of the evaluator's side (queries, sketch merges), median of
``--repeats`` evaluations per round. Usage: ``python -m bench.evaluator_windows``
(needs Postgres, e.g. ``make infra-up``). Prints the figures; writes no result file.
"""

from __future__ import annotations

import argparse
import random
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import uvloop
from datasketches import hll_sketch, kll_doubles_sketch

from services.scoring.domain.aggregates import HLL_LG_K, KLL_K, BucketKey, TermAggregate
from services.scoring.domain.buckets import bucket_start, bucket_width
from services.scoring.domain.catalog import KpiDefinition, parse_catalog
from services.scoring.repository import PartitionBucket, ScoringRepositories
from services.scoring.windows import WindowTotals
from shared.db.engine import create_engine, create_session_factory, transaction
from shared.settings import DatabaseSettings
from tests.conftest import create_database, drop_database

PARTITIONS = 6
CATALOG = Path(__file__).resolve().parent.parent / "catalog" / "example.yaml"


def _sketch(kind: str, rng: random.Random) -> bytes:
    if kind == "hll":
        hll = hll_sketch(HLL_LG_K)
        for _ in range(50):
            hll.update(f"user-{rng.randrange(100_000)}")
        hll_bytes: bytes = hll.serialize_compact()
        return hll_bytes
    kll = kll_doubles_sketch(KLL_K)
    for _ in range(50):
        kll.update(rng.expovariate(0.1))
    kll_bytes: bytes = kll.serialize()
    return kll_bytes


def _buckets(kpi: KpiDefinition, now: datetime, rng: random.Random) -> dict[
    PartitionBucket, TermAggregate
]:
    """Every bucket of ``kpi``'s window ending ``now``, in each partition."""
    width = bucket_width(kpi)
    deltas: dict[PartitionBucket, TermAggregate] = {}
    start = bucket_start(kpi, now, UTC)
    while start > now - kpi.window - width:
        for term_index, term in enumerate(kpi.terms):
            for partition in range(PARTITIONS):
                kind = term.sketch_kind
                deltas[PartitionBucket(BucketKey(kpi.key, term_index, start), partition)] = (
                    TermAggregate(50, 50_000_000, 0.5, 99.0)
                    if kind is None
                    else TermAggregate(50, sketch=_sketch(kind, rng), sketch_kind=kind)
                )
        start = bucket_start(kpi, start - width / 2, UTC)
    return deltas


async def run(args: argparse.Namespace) -> None:
    name = f"kpipulse_bench_windows_{uuid.uuid4().hex[:8]}"
    url = await create_database(name)
    engine = create_engine(DatabaseSettings(url=url))
    try:
        sessions = create_session_factory(engine)
        kpis = list(parse_catalog(CATALOG.read_text()))
        repo = ScoringRepositories.for_dialect("postgresql").buckets
        rng, now = random.Random(5), datetime.now(UTC)
        rows = 0
        for kpi in kpis:
            deltas = _buckets(kpi, now, rng)
            rows += len(deltas)
            async with transaction(sessions) as session:
                await repo.add(session, deltas)
        print(f"{len(kpis)} KPIs, {rows:,} bucket rows", flush=True)
        windows = WindowTotals(repo, UTC, refresh_s=3600)
        async with sessions() as session:
            await windows.read(session, kpis, datetime.now(UTC))  # the settled parts

        async def whole() -> None:
            as_of = datetime.now(UTC)
            async with sessions() as session:
                await repo.windows_totals(
                    session, {kpi.key: (as_of - kpi.window, as_of) for kpi in kpis}
                )

        async def remembered() -> None:
            async with sessions() as session:
                await windows.read(session, kpis, datetime.now(UTC))

        for number in range(args.rounds):
            medians = {}
            for label, evaluate in (("whole", whole), ("remembered", remembered)):
                times = []
                for _ in range(args.repeats):
                    started = time.perf_counter()
                    await evaluate()
                    times.append(time.perf_counter() - started)
                medians[label] = sorted(times)[len(times) // 2] * 1000
            print(
                f"round {number + 1}: whole windows {medians['whole']:.1f} ms, remembered "
                f"{medians['remembered']:.1f} ms per evaluation of the catalog "
                f"(ratio {medians['whole'] / medians['remembered']:.1f})",
                flush=True,
            )
    finally:
        await engine.dispose()
        await drop_database(name)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=11)
    uvloop.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
