"""Each KPI's window totals for the evaluator, the settled part of the window remembered.

Summing a whole window on every evaluation made each evaluation cost as much as the
windows are long: a 7-day window is 168 hourly buckets (times the partitions that wrote
rows for them), and under load every KPI is re-evaluated every second or so
(``bench/evaluator_windows.py`` measures both ways). But events land almost only in the
newest buckets. So a window is read in two parts:

- the *open* part, the buckets from ``OPEN_SPAN`` before now on, read on every
  evaluation (a few buckets);
- the *settled* part, every older bucket of the window, read once and remembered until
  the window's first bucket changes (it slides by one bucket width at a time), a fold in
  this process changes one of its buckets (a late event: ``changed``), the KPI's
  definition changes, or ``refresh_s`` passed — the bound on how long a late event folded
  by *another* scorer instance takes to show.

The two parts' totals merge exactly like the buckets themselves (counts and sums add,
extremes and sketches merge), so a value equals the whole window read at once.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, tzinfo
from typing import Final

from sqlalchemy.ext.asyncio import AsyncSession

from services.scoring.domain.aggregates import TermAggregate, merge_all
from services.scoring.domain.buckets import bucket_start
from services.scoring.domain.catalog import KpiDefinition
from services.scoring.repository import BucketRepository

#: How far back from now a window counts as open: events this late are usual (clients
#: batch and retry), so their buckets are read every time instead of being re-settled.
OPEN_SPAN: Final = timedelta(seconds=10)
_JUST_BEFORE: Final = timedelta(microseconds=1)

Totals = dict[int, TermAggregate]


@dataclass(frozen=True, slots=True)
class _Settled:
    kpi: KpiDefinition
    # The settled part: buckets starting in (after, through].
    after: datetime
    through: datetime
    generation: int
    read_at: float
    totals: Totals


@dataclass(frozen=True, slots=True)
class _Split:
    after: datetime  # the window: buckets starting in (after, as_of]
    through: datetime  # the settled part ends with the bucket starting here


class WindowTotals:
    def __init__(
        self,
        buckets: BucketRepository,
        tz: tzinfo,
        *,
        refresh_s: float,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._buckets = buckets
        self._tz = tz
        self._refresh_s = refresh_s
        self._monotonic = monotonic
        self._settled: dict[str, _Settled] = {}
        # The settled part last asked for, per KPI, and a count of the folds that changed
        # it: a settled part read while a fold changed it is not kept.
        self._through: dict[str, datetime] = {}
        self._generation: dict[str, int] = {}

    def changed(self, oldest: Mapping[str, datetime]) -> None:
        """Buckets of these KPIs from these starts on were just written by a fold."""
        for key, start in oldest.items():
            through = self._through.get(key)
            if through is not None and start <= through:
                self._generation[key] = self._generation.get(key, 0) + 1

    async def read(
        self, session: AsyncSession, kpis: Sequence[KpiDefinition], as_of: datetime
    ) -> dict[str, Totals]:
        """Per KPI, per term, the merge of its buckets starting in (as_of - window, as_of]."""
        splits = {kpi.key: self._split(kpi, as_of) for kpi in kpis}
        for kpi in kpis:
            self._through[kpi.key] = splits[kpi.key].through
        now = self._monotonic()
        generations = {kpi.key: self._generation.get(kpi.key, 0) for kpi in kpis}
        stale = [kpi for kpi in kpis if not self._fresh(kpi, splits[kpi.key], now)]
        if stale:
            read = await self._buckets.windows_totals(
                session,
                {
                    kpi.key: (splits[kpi.key].after, splits[kpi.key].through)
                    for kpi in stale
                    if splits[kpi.key].through > splits[kpi.key].after
                },
            )
            for kpi in stale:
                split = splits[kpi.key]
                self._settled[kpi.key] = _Settled(
                    kpi, split.after, split.through, generations[kpi.key], now,
                    read.get(kpi.key, {}),
                )
        recent = await self._buckets.windows_totals(
            session,
            {
                kpi.key: (max(splits[kpi.key].after, splits[kpi.key].through), as_of)
                for kpi in kpis
            },
        )
        return {kpi.key: self._merged(kpi, recent.get(kpi.key, {})) for kpi in kpis}

    def _split(self, kpi: KpiDefinition, as_of: datetime) -> _Split:
        # Buckets starting after the window's start are those starting after the start of
        # the bucket it falls in: so the window's buckets change only at bucket bounds.
        after = bucket_start(kpi, as_of - kpi.window, self._tz)
        open_from = bucket_start(kpi, as_of - OPEN_SPAN, self._tz)
        through = bucket_start(kpi, open_from - _JUST_BEFORE, self._tz)
        return _Split(after, through)

    def _fresh(self, kpi: KpiDefinition, split: _Split, now: float) -> bool:
        settled = self._settled.get(kpi.key)
        return (
            settled is not None
            and settled.after == split.after
            and settled.through == split.through
            and settled.generation == self._generation.get(kpi.key, 0)
            and now - settled.read_at < self._refresh_s
            and settled.kpi == kpi
        )

    def _merged(self, kpi: KpiDefinition, recent: Totals) -> Totals:
        settled = self._settled[kpi.key].totals
        merged: Totals = {}
        for term in settled.keys() | recent.keys():
            parts = [part for part in (settled.get(term), recent.get(term)) if part is not None]
            combined = merge_all(parts)
            if combined is not None:
                merged[term] = combined
        return merged
