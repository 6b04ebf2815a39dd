"""Targets that change over time: a schedule of minimum and target by date.

::

    minimum: 0.10          # in force before the schedule's first step
    target: 0.15
    targets:               # each step from its date (in the catalog's time zone) on
      - {from: 2027-01-01, minimum: 0.12, target: 0.18}
      - {from: 2027-04-01, minimum: 0.14, target: 0.20}

A value is judged against the step in force at its time: the current status and score
against today's step, a history point against its moment's, and each review period of
the period analysis against the step in force at the period's start (a quarter planned
at 0.18 is not judged against next quarter's 0.20). Steps are in ascending date order,
without repeats, and each obeys the KPI's direction like the KPI's own thresholds.
"""

from __future__ import annotations

from datetime import date, datetime, tzinfo
from typing import TYPE_CHECKING, Annotated

from pydantic import BaseModel, ConfigDict, Field

if TYPE_CHECKING:
    from services.scoring.domain.catalog import KpiDefinition

Number = Annotated[float, Field(allow_inf_nan=False)]


class TargetStep(BaseModel):
    # Written and read as ``from`` (a Python keyword, hence the field's own name).
    model_config = ConfigDict(
        extra="forbid", frozen=True, validate_by_name=True, serialize_by_alias=True
    )

    starts: date = Field(alias="from")
    minimum: Number
    target: Number


def schedule_problems(kpi: KpiDefinition) -> list[str]:
    """Order, repeats and each step's thresholds against the direction."""
    direction, steps = kpi.direction, kpi.targets
    band = (kpi.band.low, kpi.band.high) if kpi.band else None
    problems: list[str] = []
    for index, step in enumerate(steps):
        where = f"targets.{index}"
        if index and step.starts <= steps[index - 1].starts:
            problems.append(f"{where}.from: {step.starts} is not after the step before it")
        if direction == "higher_is_better" and step.minimum > step.target:
            problems.append(f"{where}: minimum {step.minimum:g} is above target {step.target:g}")
        if direction == "lower_is_better" and step.minimum < step.target:
            problems.append(f"{where}: minimum {step.minimum:g} is below target {step.target:g}")
        if direction == "target_band":
            if band is not None and not band[0] <= step.target <= band[1]:
                problems.append(f"{where}: target {step.target:g} is outside the band")
            if step.minimum < 0:
                problems.append(f"{where}: minimum is the tolerated distance, must be >= 0")
    return problems


def in_force(kpi: KpiDefinition, when: datetime, tz: tzinfo) -> KpiDefinition:
    """``kpi`` with the minimum and target in force at ``when`` (itself without a schedule)."""
    if not kpi.targets:
        return kpi
    day = when.astimezone(tz).date()
    current: TargetStep | None = None
    for step in kpi.targets:
        if step.starts > day:
            break
        current = step
    if current is None:
        return kpi
    return kpi.model_copy(update={"minimum": current.minimum, "target": current.target})
