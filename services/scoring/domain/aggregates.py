"""Additive partial aggregates in time buckets, and the fold of events into them.

A KPI formula decomposes into terms (term 0; a ratio also has term 1, the denominator).
Per (KPI, term, bucket start) the fold keeps a ``TermAggregate``; ``merge`` of two
aggregates is associative and commutative, so buckets from any partition, batch or late
event combine in any order into the same window value.

Exactness: ``sum`` is kept as an integer number of micro-units (``sum_micros``), so adding
partials never depends on the order (float addition does). Values are rounded to 1e-6.
HyperLogLog unions are order-independent; KLL merges are exact below ~k·(levels) items and
keep the documented KLL rank error (~1.3% for k=200) beyond.

Bucket width (``bucket_width``): the largest of 1s, 10s, 1m, 5m, 15m, 1h, 1d not exceeding
window/60 (so a window spans >= 60 buckets), stepped up to the next width while the
window would span more than 400 buckets. Examples: 1m→1s (60), 1h→1m (60), 1d→15m (96),
7d→1h (168), 30d→1d (30), 365d→1d (365). Sub-day buckets are aligned on the Unix epoch
(UTC); 1d buckets start at local midnight in the configured time zone (23 or 25 hours
long on DST change days), so they line up with calendar review periods.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Any, Final, NamedTuple, Protocol

from datasketches import hll_sketch, hll_union, kll_doubles_sketch, tgt_hll_type

from services.scoring.domain.catalog import Catalog, KpiDefinition
from services.scoring.domain.durations import format_duration
from services.scoring.domain.formulas import (
    SketchKind,
    Term,
    field_getter,
    numeric,
    same_scalar,
)

HLL_LG_K: Final = 12
KLL_K: Final = 200
MICROS: Final = 1_000_000
#: Larger magnitudes are skipped as unusable: no KPI needs them, and their micro-units
#: must still fit a NUMERIC(38) column.
MAX_ABS_VALUE: Final = 1e18

DAY_S: Final = 86_400
WIDTHS_S: Final[tuple[int, ...]] = (1, 10, 60, 300, 900, 3600, DAY_S)
MIN_BUCKETS_PER_WINDOW: Final = 60
MAX_BUCKETS_PER_WINDOW: Final = 400


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


class BucketKey(NamedTuple):
    kpi_key: str
    term: int
    bucket_start: datetime  # UTC


@dataclass(frozen=True, slots=True)
class TermAggregate:
    """A mergeable partial aggregate of one term over one bucket (or any union of them).

    ``count`` is the number of events counted (for numeric terms: with a numeric field);
    ``sum_micros`` the field sum in micro-units; ``min``/``max`` None until a number is
    seen; ``sketch`` the serialized HLL (distinct) or KLL (percentile) sketch.
    """

    count: int = 0
    sum_micros: int = 0
    min: float | None = None
    max: float | None = None
    sketch: bytes | None = None
    sketch_kind: SketchKind | None = None

    @property
    def sum(self) -> float:
        return self.sum_micros / MICROS


def merge(a: TermAggregate, b: TermAggregate) -> TermAggregate:
    """Combine two partials; associative and commutative."""
    merged = merge_all((a, b))
    assert merged is not None  # two inputs never merge into nothing
    return merged


def merge_all(parts: Iterable[TermAggregate]) -> TermAggregate | None:
    """Merge any number of partials (sketches deserialized once each); None if no parts."""
    count = total = 0
    low: float | None = None
    high: float | None = None
    kind: SketchKind | None = None
    sketches: list[bytes] = []
    seen = False
    for part in parts:
        seen = True
        count += part.count
        total += part.sum_micros
        if part.min is not None and (low is None or part.min < low):
            low = part.min
        if part.max is not None and (high is None or part.max > high):
            high = part.max
        if part.sketch_kind is not None:
            if kind is not None and kind != part.sketch_kind:
                raise ValueError(f"cannot merge {kind} and {part.sketch_kind} sketches")
            kind = part.sketch_kind
        if part.sketch is not None:
            sketches.append(part.sketch)
    if not seen:
        return None
    sketch = _merge_sketches(kind, sketches)
    return TermAggregate(count, total, low, high, sketch, kind)


def _merge_sketches(kind: SketchKind | None, sketches: list[bytes]) -> bytes | None:
    if not sketches:
        return None
    if len(sketches) == 1:
        return sketches[0]
    if kind == "hll":
        union = hll_union(HLL_LG_K)
        for raw in sketches:
            union.update(hll_sketch.deserialize(raw))
        result: bytes = union.get_result(tgt_hll_type.HLL_8).serialize_compact()
        return result
    if kind == "kll":
        merged = kll_doubles_sketch(KLL_K)
        for raw in sketches:
            merged.merge(kll_doubles_sketch.deserialize(raw))
        out: bytes = merged.serialize()
        return out
    raise ValueError("sketch bytes without a sketch_kind")


def bucket_width(kpi: KpiDefinition) -> timedelta:
    """The bucket width for ``kpi``'s window (rule in the module docstring)."""
    return timedelta(seconds=_width_s(kpi.window))


def _width_s(window: timedelta) -> int:
    window_s = window.total_seconds()
    index = 0
    for i, width in enumerate(WIDTHS_S):
        if width * MIN_BUCKETS_PER_WINDOW <= window_s:
            index = i
    while index < len(WIDTHS_S) - 1 and window_s / WIDTHS_S[index] > MAX_BUCKETS_PER_WINDOW:
        index += 1
    return WIDTHS_S[index]


def bucket_start(kpi: KpiDefinition, ts: datetime, tz: tzinfo) -> datetime:
    """Start (UTC) of the bucket of ``kpi`` containing the aware instant ``ts``."""
    width = _width_s(kpi.window)
    seconds = ts.timestamp()
    start = local_midnight(seconds, tz) if width == DAY_S else int(seconds // width) * width
    return datetime.fromtimestamp(start, UTC)


def local_midnight(seconds: float, tz: tzinfo) -> int:
    """Epoch seconds of the start of the local calendar day containing ``seconds``.

    A midnight skipped by DST resolves (fold=0) to the first instant of that day.
    """
    local = datetime.fromtimestamp(seconds, tz)
    return int(datetime(local.year, local.month, local.day, tzinfo=tz).timestamp())


# --- fold ---------------------------------------------------------------------------


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


@dataclass(eq=False, slots=True)
class _Compiled:
    kpi_key: str
    term_index: int
    term: Term
    accessor: str  # "count" | "value" | "subject_id" | "property"
    prop: str
    width_s: int
    retention_s: float
    # copied off ``term`` so the per-event path reads plain attributes
    kind: str = field(init=False)
    sketch_kind: SketchKind | None = field(init=False)
    properties: tuple[tuple[str, object], ...] = field(init=False)

    def __post_init__(self) -> None:
        self.kind = self.term.kind
        self.sketch_kind = self.term.sketch_kind
        self.properties = self.term.properties


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


_MISSING: Final = object()
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
            _Compiled(
                kpi.key,
                index,
                term,
                "count" if term.field is None else field_getter(term.field)[0],
                "" if term.field is None else field_getter(term.field)[1],
                _width_s(kpi.window),
                kpi.effective_retention.total_seconds(),
            )
            for kpi in catalog
            for index, term in enumerate(kpi.terms)
        ]
        self._retention = {kpi.key: kpi.effective_retention for kpi in catalog}
        self._order = {key: index for index, key in enumerate(self._retention)}
        self._index: dict[tuple[str, str], _Plan] = {}
        self._midnights: dict[int, int] = {}
        self._starts: dict[int, datetime] = {}

    def _plan_for(self, source: str, event_type: str) -> _Plan:
        found = self._index.get((source, event_type))
        if found is None:
            found = _Plan.of([c for c in self._compiled if c.term.accepts(source, event_type)])
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
        accs: dict[tuple[_Compiled, int], _Acc] = {}
        # Events per (match, time slot, local day): count terms are added from these once
        # per batch instead of once per event and term.
        tallies: dict[tuple[_Match, int, int], int] = {}
        skipped: dict[_Compiled, int] = {}
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
        match: _Match,
        accs: dict[tuple[_Compiled, int], _Acc],
        skipped: dict[_Compiled, int],
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


#: Distinct filter-relevant property combinations remembered per (source, type); past
#: this (a filter on a high-cardinality property), further combinations are matched in full.
_PLAN_CACHE_SIZE: Final = 4096


@dataclass(slots=True)
class _Plan:
    """The terms an event of one (source, type) may match, and which of them it does.

    Which terms match depends only on the few properties their filters read, and those
    take few distinct values (a channel, a flag), so the answer is remembered per
    combination: one lookup per event instead of a comparison per term. The key holds
    the values' types too, because ``True``, ``1`` and ``1.0`` are equal dict keys but
    not equal filter values (``same_scalar``).
    """

    always: _Match  # the terms without a property filter
    filtered: tuple[_Compiled, ...]
    names: tuple[str, ...]  # every property a filter of these terms reads
    defaults: tuple[object, ...]  # _MISSING for each name
    cache: dict[tuple[tuple[object, ...], tuple[type, ...]], _Match] = field(
        default_factory=dict
    )

    @classmethod
    def of(cls, terms: list[_Compiled]) -> _Plan:
        names = tuple(sorted({name for c in terms for name, _ in c.properties}))
        return cls(
            always=_Match([c for c in terms if not c.properties]),
            filtered=tuple(c for c in terms if c.properties),
            names=names,
            defaults=(_MISSING,) * len(names),
        )

    def matching(self, properties: Mapping[str, object]) -> _Match:
        """The terms an event with ``properties`` matches."""
        if not self.names:
            return self.always
        values = tuple(map(properties.get, self.names, self.defaults))
        key = (values, tuple(map(type, values)))
        try:
            found = self.cache.get(key)
        except TypeError:  # a list or object among the values: match in full
            return self._match(properties)
        if found is None:
            found = self._match(properties)
            if len(self.cache) < _PLAN_CACHE_SIZE:
                self.cache[key] = found
        return found

    def _match(self, properties: Mapping[str, object]) -> _Match:
        return _Match(
            self.always.terms
            + [c for c in self.filtered if _props_match(properties, c.properties)]
        )


class _Match:
    """The terms one kind of event matches, split the way the fold treats them.

    Identity-hashed: the fold tallies events per match object, so a match is built once
    per cache entry and reused.
    """

    __slots__ = ("counts", "daily", "grain_s", "others", "retention_s", "terms")

    def __init__(self, terms: list[_Compiled]) -> None:
        self.terms = terms
        self.counts = tuple(c for c in terms if c.kind == "count")
        self.others = tuple(c for c in terms if c.kind != "count")
        #: Events newer than this many seconds before now are within every term's retention.
        self.retention_s = min((c.retention_s for c in terms), default=0.0)
        sub_day = [c.width_s for c in self.counts if c.width_s != DAY_S]
        #: The finest sub-day width of the count terms, at most 15 minutes: a slot of it
        #: lies in one bucket of every coarser width (the widths divide each other).
        self.grain_s = min([*sub_day, 900])
        self.daily = any(c.width_s == DAY_S for c in self.counts)


def fold(
    events: Iterable[Event],
    catalog: Catalog,
    tz: tzinfo,
    now: datetime | None = None,
) -> FoldResult:
    """One-shot fold; prefer a long-lived ``Folder`` in a consumer loop."""
    return Folder(catalog, tz).fold(events, now)


def _field_value(c: _Compiled, event: Event) -> object:
    accessor = c.accessor
    if accessor == "value":
        return event.value
    if accessor == "property":
        return event.properties.get(c.prop, _MISSING)
    if accessor == "subject_id":
        return event.subject_id
    return None  # "count": no field


def _props_match(properties: Mapping[str, object], wanted: tuple[tuple[str, object], ...]) -> bool:
    for name, expected in wanted:
        actual = properties.get(name, _MISSING)
        if actual != expected or not same_scalar(actual, expected):
            return False
    return True


def _update(accs: dict[tuple[_Compiled, int], _Acc], c: _Compiled, start: int, raw: object) -> bool:
    """Add one event to its accumulator; False when its field is unusable (skipped)."""
    kind = c.kind
    if kind == "count":
        acc = accs.get((c, start))
        if acc is None:
            acc = accs[(c, start)] = _Acc(None)
        acc.count += 1
        return True
    if kind == "distinct":
        if raw is None or raw is _MISSING or isinstance(raw, dict | list):
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
    accs: Mapping[tuple[_Compiled, int], _Acc], starts: dict[int, datetime]
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
