"""Derived KPIs' values for the evaluator: their inputs evaluated, then the expression.

Inputs that are not due themselves are evaluated here too (the window cache makes that
cheap), so a derived KPI always combines values of one moment. Derived KPIs that read
other derived KPIs are computed inputs first (the catalog refuses cycles).

``previous(key)`` reads a whole past period; that period rarely changes (late events
only), while a derived KPI is evaluated whenever an input is. So its values are kept for
``PREVIOUS_REFRESH_S`` per KPI and period, the bound on how long a late event into the
previous period takes to show in a growth figure.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta, tzinfo
from typing import Final

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
PREVIOUS_REFRESH_S: Final = 10.0


class DerivedValues:
    def __init__(
        self,
        buckets: BucketRepository,
        reported: ReportedRepository,
        tz: tzinfo,
        *,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._buckets = buckets
        self._reported = reported
        self._tz = tz
        self._monotonic = monotonic
        # (derived KPI, its expression, previous period's start) -> (read at, the values of
        # its previous() inputs); the expression is part of the key so that an edit of it
        # is never answered from the old one's inputs.
        self._previous: dict[
            tuple[str, str, datetime], tuple[float, dict[str, float | None]]
        ] = {}

    def forget(self) -> None:
        """Values were entered (often for a past period): read previous periods afresh."""
        self._previous.clear()

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
        now = self._monotonic()
        cache_key = (kpi.key, expression.text, start)
        kept = self._previous.get(cache_key)
        if kept is not None and now - kept[0] < PREVIOUS_REFRESH_S:
            return kept[1]
        values = await self._read_previous(session, catalog, expression, start, kpi)
        # One entry per derived KPI: an older period's values are never asked again.
        self._previous = {k: v for k, v in self._previous.items() if k[0] != kpi.key}
        self._previous[cache_key] = (now, values)
        return values

    async def _read_previous(
        self,
        session: AsyncSession,
        catalog: Catalog,
        expression: Expression,
        start: datetime,
        kpi: KpiDefinition,
    ) -> dict[str, float | None]:
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
