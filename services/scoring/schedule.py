"""When each KPI is next due for evaluation: the work of a tick is that of the KPIs due.

A KPI is due ``update_every`` after its last evaluation, or once it was marked changed
(a fold, an entered value) and ``changed_every`` passed since its last evaluation; a
derived KPI also whenever one of its inputs is. The scheduled times sit in a heap with
one entry per KPI, and each KPI's derived followers in a map, so a tick looks only at
the KPIs whose time came and the changed ones; the whole catalog is walked only when it
changes.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable
from collections.abc import Set as AbstractSet
from datetime import datetime, timedelta

from services.scoring.domain.catalog import Catalog, KpiDefinition


class Schedule:
    def __init__(self) -> None:
        self._catalog: Catalog | None = None
        # (next due time, key): one entry per KPI of the catalog.
        self._queue: list[tuple[datetime, str]] = []
        self._evaluated_at: dict[str, datetime] = {}
        self._followers: dict[str, list[KpiDefinition]] = {}

    def due(
        self,
        catalog: Catalog,
        now: datetime,
        *,
        changed: AbstractSet[str],
        changed_every: timedelta,
    ) -> list[KpiDefinition]:
        """The KPIs to evaluate now."""
        if catalog is not self._catalog:
            self._plan(catalog, now)
        due: dict[str, KpiDefinition] = {}
        for key in changed:
            kpi = catalog.by_key.get(key)
            last = self._evaluated_at.get(key)
            if kpi is not None and (last is None or now - last >= changed_every):
                due[key] = kpi
        while self._queue and self._queue[0][0] <= now:
            _, key = heapq.heappop(self._queue)
            kpi = catalog.by_key[key]
            last = self._evaluated_at.get(key)
            if last is not None and last + kpi.update_every > now:
                # Evaluated since it was scheduled (it had changed): due later.
                heapq.heappush(self._queue, (last + kpi.update_every, key))
                continue
            due[key] = kpi
            heapq.heappush(self._queue, (now + kpi.update_every, key))
        # A derived KPI follows its inputs: it is due whenever one of them is.
        for key in list(due):
            for derived in self._followers.get(key, ()):
                due.setdefault(derived.key, derived)
        return list(due.values())

    def evaluated(self, keys: Iterable[str], at: datetime) -> None:
        for key in keys:
            self._evaluated_at[key] = at

    def _plan(self, catalog: Catalog, now: datetime) -> None:
        self._catalog = catalog
        self._followers = derived_from(catalog)
        self._evaluated_at = {
            k: at for k, at in self._evaluated_at.items() if k in catalog.by_key
        }
        self._queue = [
            (
                self._evaluated_at[kpi.key] + kpi.update_every
                if kpi.key in self._evaluated_at
                else now,
                kpi.key,
            )
            for kpi in catalog
        ]
        heapq.heapify(self._queue)


def derived_from(catalog: Catalog) -> dict[str, list[KpiDefinition]]:
    """Per KPI, the derived KPIs computed from it: due whenever it is."""
    followers: dict[str, list[KpiDefinition]] = {}
    for kpi in catalog:
        expression = kpi.formula.expression
        if expression is not None:
            for key in expression.inputs:
                followers.setdefault(key, []).append(kpi)
    return followers
