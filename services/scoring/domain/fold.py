"""The fold: a batch of events into bucket deltas, per KPI term.

The scorer's hottest loop (every event, every term it matches). ``Folder`` compiles a
catalog once (filters precompiled, terms indexed by source and type) and is reused for
every batch of that catalog version.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, tzinfo
from typing import Any, Final, Protocol

from datasketches import hll_sketch, kll_doubles_sketch

from services.scoring.domain.aggregates import (
    HLL_LG_K,
    KLL_K,
    MAX_ABS_VALUE,
    MICROS,
    BucketKey,
    TermAggregate,
)
from services.scoring.domain.buckets import DAY_S, local_midnight, width_s
from services.scoring.domain.catalog import Catalog
from services.scoring.domain.durations import format_duration
from services.scoring.domain.formulas import SketchKind, field_getter, numeric
from services.scoring.domain.matching import MISSING, CompiledTerm, Match, Plan


class Event(Protocol):
    """What folding reads of an event: ``EventEnvelope`` or the consumers' ``ReadEvent``."""

    @property
    def event_id(self) -> str: ...
    @property
    def source(self) -> str: ...
    @property
    def type(self) -> str: ...
    @property
    def occurred_at(self) -> datetime: ...
    @property
    def subject_id(self) -> str | None: ...
    @property
    def value(self) -> float | None: ...
    @property
    def properties(self) -> dict[str, Any]: ...
    def to_bytes(self) -> bytes: ...


@dataclass(frozen=True)
class Refusal:
    """An event too old for the retention of some KPIs it matches (dead-letter it)."""

    event: Event
    kpi_keys: tuple[str, ...]
    reason: str


@dataclass
class FoldResult:
    buckets: dict[BucketKey, TermAggregate] = field(default_factory=dict)
    refused: list[Refusal] = field(default_factory=list)
    #: (kpi_key, term) → events matched but skipped: field missing or not numeric.
    skipped: dict[tuple[str, int], int] = field(default_factory=dict)
    #: events that matched no KPI term at all.
    unmatched: int = 0


class _Acc:
    __slots__ = ("count", "high", "low", "sketch", "total")

    def __init__(self, kind: SketchKind | None) -> None:
        self.count = 0
        self.total = 0
        self.low: float | None = None
        self.high: float | None = None
        self.sketch: Any = None
        if kind == "hll":
            self.sketch = hll_sketch(HLL_LG_K)
        elif kind == "kll":
            self.sketch = kll_doubles_sketch(KLL_K)


# Local-midnight cache granularity: a 15-minute slot maps to one day start; the rare slot
# that contains a local midnight (off-grid historical offsets) is resolved per event.
_SLOT_S: Final = 900


class Folder:
    """A catalog compiled for folding: filters precompiled, KPIs indexed by (source, type).

    Reuse one ``Folder`` per catalog version; ``fold`` may be called for each batch. It
    keeps small caches, so give each consumer task its own instance (not thread-safe).
    """

    def __init__(self, catalog: Catalog, tz: tzinfo) -> None:
        self._tz = tz
        self._compiled = [
            CompiledTerm(
                kpi.key,
                index,
                term,
                "count" if term.field is None else field_getter(term.field)[0],
                "" if term.field is None else field_getter(term.field)[1],
                width_s(kpi.window),
                kpi.effective_retention.total_seconds(),
            )
            for kpi in catalog
            for index, term in enumerate(kpi.terms)
        ]
        self._retention = {kpi.key: kpi.effective_retention for kpi in catalog}
        self._order = {key: index for index, key in enumerate(self._retention)}
        self._index: dict[tuple[str, str], Plan] = {}
        self._midnights: dict[int, int] = {}
        self._starts: dict[int, datetime] = {}

    def _plan_for(self, source: str, event_type: str) -> Plan:
        found = self._index.get((source, event_type))
        if found is None:
            found = Plan.of([c for c in self._compiled if c.term.accepts(source, event_type)])
            if len(self._index) > 10_000:  # types come from clients: keep the cache bounded
                self._index.clear()
            self._index[(source, event_type)] = found
        return found

    def _day_start(self, seconds: float) -> int:
        slot = int(seconds // _SLOT_S)
        cached = self._midnights.get(slot)
        if cached is None:
            first = local_midnight(slot * _SLOT_S, self._tz)
            last = local_midnight(slot * _SLOT_S + _SLOT_S - 1, self._tz)
            cached = first if first == last else -1  # -1: a day starts inside this slot
            if len(self._midnights) > 200_000:
                self._midnights.clear()
            self._midnights[slot] = cached
        return cached if cached != -1 else local_midnight(seconds, self._tz)

    def fold(self, events: Iterable[Event], now: datetime | None = None) -> FoldResult:
        """Aggregate ``events``; with ``now``, refuse those older than a KPI's retention.

        The scorer's hottest loop (every event, every term it matches): written flat,
        with lookups hoisted into locals, because each call or attribute lookup here is
        paid a few hundred thousand times per second.
        """
        now_s = None if now is None else now.timestamp()
        accs: dict[tuple[CompiledTerm, int], _Acc] = {}
        # Events per (match, time slot, local day): count terms are added from these once
        # per batch instead of once per event and term.
        tallies: dict[tuple[Match, int, int], int] = {}
        skipped: dict[CompiledTerm, int] = {}
        result = FoldResult()
        plans, plan_for, day_start, find = self._index, self._plan_for, self._day_start, accs.get
        tally = tallies.get
        for event in events:
            plan = plans.get((event.source, event.type))
            if plan is None:
                plan = plan_for(event.source, event.type)
            match = plan.matching(event.properties)
            if not match.terms:
                result.unmatched += 1
                continue
            seconds = event.occurred_at.timestamp()
            if now_s is not None and seconds < now_s - match.retention_s:
                self._fold_old(
                    event,
                    seconds=seconds,
                    now_s=now_s,
                    match=match,
                    accs=accs,
                    skipped=skipped,
                    result=result,
                )
                continue
            if match.counts:
                key = (
                    match,
                    int(seconds // match.grain_s),
                    day_start(seconds) if match.daily else 0,
                )
                tallies[key] = tally(key, 0) + 1
            for c in match.others:
                width = c.width_s
                start = day_start(seconds) if width == DAY_S else int(seconds // width) * width
                if not _update(accs, c, start, _field_value(c, event)):
                    skipped[c] = skipped.get(c, 0) + 1
        for (match, slot, day), n in tallies.items():
            slot_s = slot * match.grain_s
            for c in match.counts:
                width = c.width_s
                # Widths divide each other, so the slot lies in one bucket of each width.
                start = day if width == DAY_S else slot_s // width * width
                acc = find((c, start))
                if acc is None:
                    acc = accs[(c, start)] = _Acc(None)
                acc.count += n
        if len(self._starts) > 100_000:
            self._starts.clear()
        result.buckets = _freeze(accs, self._starts)
        result.skipped = {(c.kpi_key, c.term_index): n for c, n in skipped.items()}
        return result

    def _fold_old(
        self,
        event: Event,
        *,
        seconds: float,
        now_s: float,
        match: Match,
        accs: dict[tuple[CompiledTerm, int], _Acc],
        skipped: dict[CompiledTerm, int],
        result: FoldResult,
    ) -> None:
        """An event older than some matched KPI's retention: those refuse it (it goes to
        the DLQ naming them), the others count it."""
        too_old: list[str] = []
        for c in match.terms:
            if seconds < now_s - c.retention_s:
                if c.kpi_key not in too_old:
                    too_old.append(c.kpi_key)
                continue
            width = c.width_s
            start = self._day_start(seconds) if width == DAY_S else int(seconds // width) * width
            if not _update(accs, c, start, _field_value(c, event)):
                skipped[c] = skipped.get(c, 0) + 1
        result.refused.append(self._refusal(event, too_old))

    def _refusal(self, event: Event, keys: list[str]) -> Refusal:
        keys = sorted(keys, key=self._order.__getitem__)  # catalog order, whatever matched
        spans = ", ".join(f"{key} ({format_duration(self._retention[key])})" for key in keys)
        return Refusal(event, tuple(keys), f"older than the retention of KPIs: {spans}")


def fold(
    events: Iterable[Event],
    catalog: Catalog,
    tz: tzinfo,
    now: datetime | None = None,
) -> FoldResult:
    """One-shot fold; prefer a long-lived ``Folder`` in a consumer loop."""
    return Folder(catalog, tz).fold(events, now)


def _field_value(c: CompiledTerm, event: Event) -> object:
    accessor = c.accessor
    if accessor == "value":
        return event.value
    if accessor == "property":
        return event.properties.get(c.prop, MISSING)
    if accessor == "subject_id":
        return event.subject_id
    return None  # "count": no field


def _update(
    accs: dict[tuple[CompiledTerm, int], _Acc], c: CompiledTerm, start: int, raw: object
) -> bool:
    """Add one event to its accumulator; False when its field is unusable (skipped)."""
    kind = c.kind
    if kind == "count":
        acc = accs.get((c, start))
        if acc is None:
            acc = accs[(c, start)] = _Acc(None)
        acc.count += 1
        return True
    if kind == "distinct":
        if raw is None or raw is MISSING or isinstance(raw, dict | list):
            return False
        acc = accs.get((c, start))
        if acc is None:
            acc = accs[(c, start)] = _Acc(c.sketch_kind)
        acc.count += 1
        acc.sketch.update(str(raw))
        return True
    number = numeric(raw)
    if number is None or abs(number) > MAX_ABS_VALUE:
        return False
    acc = accs.get((c, start))
    if acc is None:
        acc = accs[(c, start)] = _Acc(c.sketch_kind)
    acc.count += 1
    acc.total += round(number * MICROS)
    if acc.low is None or number < acc.low:
        acc.low = number
    if acc.high is None or number > acc.high:
        acc.high = number
    if acc.sketch is not None:
        acc.sketch.update(number)
    return True


def _freeze(
    accs: Mapping[tuple[CompiledTerm, int], _Acc], starts: dict[int, datetime]
) -> dict[BucketKey, TermAggregate]:
    out: dict[BucketKey, TermAggregate] = {}
    for (c, start), acc in accs.items():
        when = starts.get(start)
        if when is None:
            when = starts[start] = datetime.fromtimestamp(start, UTC)
        sketch: bytes | None = None
        if c.sketch_kind == "hll":
            sketch = acc.sketch.serialize_compact()
        elif c.sketch_kind == "kll":
            sketch = acc.sketch.serialize()
        out[BucketKey(c.kpi_key, c.term_index, when)] = TermAggregate(
            acc.count, acc.total, acc.low, acc.high, sketch, c.sketch_kind
        )
    return out
