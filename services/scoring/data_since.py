"""When each KPI's data began, kept per process so that reads ask only about KPIs whose
window is still filling (the evaluator and the read API each keep one)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from services.scoring.domain.catalog import Catalog, KpiDefinition
from services.scoring.domain.coverage import is_partial, kpi_coverage
from services.scoring.repository import BucketRepository


@dataclass(slots=True)
class DataSince:
    """Per KPI, when its data began (its first bucket): what its coverage is taken from.

    Only KPIs whose window is not known to be full are asked again: a backfill or a fold
    may move their start back, but once full a window stays full. Reading every KPI's
    first bucket on each read made its cost grow with all the buckets stored. Folds
    move a start back through ``began``.
    """

    found: dict[str, datetime] = field(default_factory=dict)
    full: set[str] = field(default_factory=set)
    # The catalog ``found`` and ``full`` are of: looked over again only when it changes.
    catalog: Catalog | None = None

    async def refresh(
        self,
        session: AsyncSession,
        buckets: BucketRepository,
        catalog: Catalog,
        kpis: Iterable[KpiDefinition],
        now: datetime,
    ) -> dict[str, datetime]:
        """``found`` brought up to date for ``kpis`` (and the inputs they are computed
        from); KPIs that left the catalog are forgotten."""
        if catalog is not self.catalog:
            self.catalog = catalog
            self.found = {k: v for k, v in self.found.items() if k in catalog}
            # A definition may have changed its window: each KPI's is judged again.
            self.full.clear()
        unsure = sorted({key for kpi in kpis for key in _folded_inputs(kpi, catalog)} - self.full)
        if unsure:
            starts = await buckets.first_bucket_starts(session, unsure)
            for key in unsure:
                if key in starts:
                    self.found[key] = starts[key]
                else:
                    self.found.pop(key, None)
                if not is_partial(kpi_coverage(catalog[key], catalog, self.found, now)):
                    self.full.add(key)
        return self.found

    def began(self, key: str, start: datetime) -> None:
        """Events were folded into ``key``'s bucket starting at ``start``."""
        since = self.found.get(key)
        if since is None or start < since:
            self.found[key] = start


def _folded_inputs(kpi: KpiDefinition, catalog: Catalog) -> set[str]:
    """The KPIs with buckets that ``kpi``'s coverage is taken from."""
    if kpi.formula.is_reported:
        return set()
    expression = kpi.formula.expression
    if expression is None:
        return {kpi.key}
    return {
        key
        for name in expression.current
        if name in catalog
        for key in _folded_inputs(catalog[name], catalog)
    }
