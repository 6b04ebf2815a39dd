"""Additive partial aggregates: what a bucket keeps, and how partials merge.

A KPI formula decomposes into terms (term 0; a ratio also has term 1, the denominator).
Per (KPI, term, bucket start) the fold keeps a ``TermAggregate``; ``merge`` of two
aggregates is associative and commutative, so buckets from any partition, batch or late
event combine in any order into the same window value.

Exactness: ``sum`` is kept as an integer number of micro-units (``sum_micros``), so adding
partials never depends on the order (float addition does). Values are rounded to 1e-6.
HyperLogLog unions are order-independent; KLL merges are exact below ~k·(levels) items and
keep the documented KLL rank error (~1.3% for k=200) beyond.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Final, NamedTuple

from datasketches import hll_sketch, hll_union, kll_doubles_sketch, tgt_hll_type

from services.scoring.domain.formulas import SketchKind

HLL_LG_K: Final = 12
KLL_K: Final = 200
MICROS: Final = 1_000_000
#: Larger magnitudes are skipped as unusable: no KPI needs them, and their micro-units
#: must still fit a NUMERIC(38) column.
MAX_ABS_VALUE: Final = 1e18


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
