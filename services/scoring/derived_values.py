"""Derived KPIs' values for the evaluator: their inputs evaluated, then the expression.

Inputs that are not due themselves are evaluated here too (the window cache makes that
cheap), so a derived KPI always combines values of one moment. Derived KPIs that read
other derived KPIs are computed inputs first (the catalog refuses cycles).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta, tzinfo

from sqlalchemy.ext.asyncio import AsyncSession

from services.scoring.domain.catalog import Catalog, KpiDefinition
from services.scoring.domain.derived import Expression, evaluate_expression, evaluation_order
from services.scoring.domain.evaluate import Evaluation, evaluate
from services.scoring.domain.periods import next_period_start
from services.scoring.domain.reported import previous_period_start
from services.scoring.repository import BucketRepository, ReportedRepository

EvaluatePlain = Callable[
    [AsyncSession, list[KpiDefinition], datetime], Awaitable[dict[str, Evaluation]]
]
_JUST_BEFORE = timedelta(microseconds=1)


class DerivedValues:
    def __init__(
        self, buckets: BucketRepository, reported: ReportedRepository, tz: tzinfo
    ) -> None:
        self._buckets = buckets
        self._reported = reported
        self._tz = tz

    async def evaluate(
        self,
        session: AsyncSession,
        catalog: Catalog,
        wanted: list[KpiDefinition],
        *,
        known: dict[str, Evaluation],
        as_of: datetime,
        evaluate_plain: EvaluatePlain,
    ) -> dict[str, Evaluation]:
        """The values of the derived KPIs ``wanted``; ``known`` holds values of this tick."""
        expressions = {kpi.key: kpi.formula.expression for kpi in catalog}
        order = evaluation_order(expressions, [kpi.key for kpi in wanted])
        missing = sorted(
            {
                name
                for key in order
                for name in _expression(expressions, key).current
                if expressions.get(name) is None and name not in known and name in catalog
            }
        )
        if missing:
            known.update(await evaluate_plain(session, [catalog[n] for n in missing], as_of))
        values = {key: evaluation.value for key, evaluation in known.items()}
        for key in order:
            expression = _expression(expressions, key)
            previous = (
                await self.previous_values(session, catalog, catalog[key], expression, as_of)
                if expression.previous
                else {}
            )
            values[key] = evaluate_expression(expression, values, previous)
            known[key] = Evaluation(values[key])
        return {kpi.key: known[kpi.key] for kpi in wanted}

    async def previous_values(
        self,
        session: AsyncSession,
        catalog: Catalog,
        kpi: KpiDefinition,
        expression: Expression,
        as_of: datetime,
    ) -> dict[str, float | None]:
        """Each ``previous(key)`` input over ``kpi``'s previous review period."""
        start = previous_period_start(kpi, as_of, self._tz)
        end = next_period_start(start, kpi.review_period, self._tz)
        inputs = [catalog[key] for key in sorted(expression.previous) if key in catalog]
        reported = [i.key for i in inputs if i.formula.is_reported]
        entered = await self._reported.values(session, reported, start) if reported else {}
        computed = [i for i in inputs if not i.formula.is_reported]
        totals = await self._buckets.windows_totals(
            session, {i.key: (start - _JUST_BEFORE, end - _JUST_BEFORE) for i in computed}
        )
        values: dict[str, float | None] = {
            key: entered.get(key, {}).get(start) for key in reported
        }
        for i in computed:
            terms = totals.get(i.key, {})
            sides = range(len(i.formula.sides()))
            values[i.key] = evaluate(i.formula, [terms.get(t) for t in sides]).value
        return values


def _expression(expressions: dict[str, Expression | None], key: str) -> Expression:
    expression = expressions[key]
    assert expression is not None  # evaluation_order yields derived KPIs only
    return expression
