"""Reading back a stored catalog that an older version's looser rules let in.

A definition stored before a rule was added (an owner written ``Lan <lan@x.com>``, a name
with a line break) no longer validates. Refusing the whole stored catalog for it would
keep scoring from starting and keep every write from replacing it, so such definitions
are left out (and reported), and links to them are dropped from the KPIs that lead to
them; a file apply or an API write replaces or retires them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from pydantic import ValidationError

from services.scoring.domain.catalog import KpiDefinition, kpi_problems


def usable_definitions(
    items: Iterable[Mapping[str, Any]], *, whole: bool = True
) -> tuple[list[KpiDefinition], list[str]]:
    """The stored definitions that still validate, and a problem for each one left out.

    ``whole``: ``items`` are the whole catalog, so leading indicators that are not among
    the usable ones are unlinked (a part of the catalog is returned as it is stored)."""
    kpis: list[KpiDefinition] = []
    problems: list[str] = []
    for item in items:
        label = repr(item.get("key", "?"))
        try:
            kpi = KpiDefinition.model_validate(dict(item))
        except ValidationError as error:
            first = error.errors(include_url=False)[0]
            where = ".".join(str(part) for part in first["loc"]) or "definition"
            problems.append(f"kpi {label}: {where}: {first['msg']}")
            continue
        own = kpi_problems(kpi)
        if own:
            problems.append(f"kpi {label}: {own[0]}")
            continue
        kpis.append(kpi)
    if not whole:
        return kpis, problems
    known = {kpi.key for kpi in kpis}
    usable = []
    for kpi in kpis:
        leads = [lead for lead in kpi.leading_indicators if lead in known]
        if len(leads) == len(kpi.leading_indicators):
            usable.append(kpi)
            continue
        problems.append(f"kpi {kpi.key!r}: a leading indicator left out is unlinked")
        usable.append(kpi.model_copy(update={"leading_indicators": leads}))
    return usable, problems
