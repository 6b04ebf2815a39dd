"""KPI values from merged term aggregates: never a fake zero.

Per simple formula: count → number of events; sum; average = sum / count; min; max;
distinct → HyperLogLog estimate rounded to a whole number; percentile → KLL quantile
(inclusive rank, i.e. the nearest-rank definition: p90 of 1..100 is 90); latest → the
value of the newest event in the window.

No data → ``None``: a term with no aggregate or a zero count has no value. A ratio is
``None`` when its denominator has no value or is zero; when only the numerator is empty
and it is a count, sum or distinct, the numerator is a real 0 (no cancellations over 40
customers is a churn rate of 0). Ratios return numerator and denominator too.

Window: the value as of ``as_of`` merges the buckets whose start lies in
``(as_of - window, as_of]``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from datasketches import hll_sketch, kll_doubles_sketch

from services.scoring.domain.aggregates import BucketKey, TermAggregate, merge_all, unpack_last
from services.scoring.domain.catalog import KpiDefinition
from services.scoring.domain.formulas import Formula, PercentileFilter, SimpleFormula

_ZERO_WHEN_EMPTY = frozenset({"count", "sum", "distinct"})


@dataclass(frozen=True, slots=True)
class Evaluation:
    value: float | None
    numerator: float | None = None
    denominator: float | None = None
    #: events (numeric terms: numeric values) behind the value, summed over terms.
    count: int = 0


def side_value(side: SimpleFormula, aggregate: TermAggregate | None) -> float | None:
    """The value of one simple formula over a merged aggregate."""
    if aggregate is None or aggregate.count == 0:
        return None
    kind = side.kind
    if kind == "count":
        return float(aggregate.count)
    if kind == "sum":
        return aggregate.sum
    if kind == "average":
        return aggregate.sum / aggregate.count
    if kind in ("min", "max"):
        return aggregate.min if kind == "min" else aggregate.max
    return _sketch_value(side, aggregate.sketch)


def _sketch_value(side: SimpleFormula, raw: bytes | None) -> float | None:
    if raw is None:
        return None
    if side.kind == "latest":
        return unpack_last(raw)[1]
    if side.kind == "distinct":
        estimate: float = hll_sketch.deserialize(raw).get_estimate()
        return float(round(estimate))
    if side.kind != "percentile":
        raise ValueError(f"not a simple formula: {side.kind}")
    sketch = kll_doubles_sketch.deserialize(raw)
    if sketch.is_empty():
        return None
    spec = side.spec()
    q = spec.q if isinstance(spec, PercentileFilter) else 0.5
    quantile: float = sketch.get_quantile(q, True)
    return None if math.isnan(quantile) else quantile


def evaluate(formula: Formula, terms: Sequence[TermAggregate | None]) -> Evaluation:
    """Value of ``formula`` from its merged terms (index = term number)."""
    sides = formula.sides()
    if len(terms) != len(sides):
        raise ValueError(f"formula has {len(sides)} term(s), got {len(terms)}")
    count = sum(term.count for term in terms if term is not None)
    if not sides:
        return Evaluation(None)  # reported or derived: not folded from events
    if formula.ratio is None:
        return Evaluation(side_value(formula, terms[0]), count=count)
    numerator_side, denominator_side = sides
    numerator = side_value(numerator_side, terms[0])
    denominator = side_value(denominator_side, terms[1])
    if numerator is None and numerator_side.kind in _ZERO_WHEN_EMPTY:
        numerator = 0.0
    if numerator is None or denominator is None or denominator == 0:
        return Evaluation(None, numerator, denominator, count)
    return Evaluation(numerator / denominator, numerator, denominator, count)


def in_window(kpi: KpiDefinition, bucket_start: datetime, as_of: datetime) -> bool:
    # In UTC: timedelta arithmetic on a ZoneInfo datetime is wall-clock, not elapsed time.
    end = as_of.astimezone(UTC)
    return end - kpi.window < bucket_start <= end


def window_terms(
    kpi: KpiDefinition,
    buckets: Mapping[BucketKey, TermAggregate],
    as_of: datetime,
) -> list[TermAggregate | None]:
    """Per term, the merge of ``kpi``'s buckets inside the window ending at ``as_of``."""
    parts: list[list[TermAggregate]] = [[] for _ in kpi.formula.sides()]
    for key, aggregate in buckets.items():
        if (
            key.kpi_key == kpi.key
            and key.term < len(parts)
            and in_window(kpi, key.bucket_start, as_of)
        ):
            parts[key.term].append(aggregate)
    return [merge_all(items) for items in parts]


def value_as_of(
    kpi: KpiDefinition,
    buckets: Mapping[BucketKey, TermAggregate],
    as_of: datetime,
) -> Evaluation:
    """The KPI's rolling value as of ``as_of`` (event time)."""
    return evaluate(kpi.formula, window_terms(kpi, buckets, as_of))
