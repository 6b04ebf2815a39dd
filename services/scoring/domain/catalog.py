"""The KPI catalog: definitions carrying the 12 attributes of a well-defined KPI.

Catalog file format
-------------------
A YAML list of KPI definitions (or a mapping with a ``kpis:`` list)::

    - key: trial_to_paid_conversion    # snake_case, unique; the KPI's identity
      name: Trial-to-paid conversion   # 1. name
      objective: Turn trials into paying customers   # 2. alignment with a goal
      perspective: customer            # financial | customer | internal_process | learning_growth
      stage: create_value              # attract | engage | create_value | retain | financial
      department: sales
      owners:                          # 10. roles: owners get alerts and may change the KPI
        - {name: Lan, email: lan@example.com, slack_webhook_url: https://hooks.example.com/x}
      viewers: [sales, leadership]     # 10. roles that may read it (owners always may)
      formula:                         # see formulas.py for every shape
        ratio:
          numerator:   {count: {source: crm, type: subscription_started}}
          denominator: {count: {source: web, type: trial_started}}
      window: 30d                      # rolling window, 1m..365d
      update_every: 1m                 # 5. refresh / freshness period, <= window
      review_period: month             # 12. period analysis: day | week | month | quarter
      unit: ratio                      # free text shown next to the value
      direction: higher_is_better      # higher_is_better | lower_is_better | target_band
      baseline: 0.12                   # 3. current result when the KPI was set (optional)
      minimum: 0.10                    # 3. the floor: worse than this is a breach
      target: 0.18                     # 3. the value to reach
      weight: 3                        # 8. share in the scorecard, > 0
      expires_on: 2027-03-31           # 6. review or renew the KPI after this date
      indicator: lagging               # 7. leading | lagging
      leading_indicators: [trial_rate] # 7. keys of KPIs that move first
      scope: {source: web, properties: {region: VN}}   # 11. AND-ed into every filter
      tracking_cost: {amount: 50, currency: USD, per: month}   # 9.
      data_collection: Trials from the product backend; subscriptions from the CRM
      retention: 120d                  # optional; see below
      require_full_window: true        # optional; see below

Durations are ``<integer><unit>``, unit s, m, h, d or w (``m`` = minutes).

Directions: ``higher_is_better`` needs ``minimum <= target``; ``lower_is_better`` needs
``minimum >= target``. ``target_band`` needs ``band: {low, high}``: values inside the band
are on target, ``target`` must lie inside it (the ideal value), and ``minimum`` is the
*tolerated distance* outside the band (>= 0): a value at most ``minimum`` away from the
band is ``below_target``, further away is a ``breach``. ``band`` is refused for the other
directions.

Retention: events older than ``retention`` relative to now are refused (and dead-lettered
by the service). Default: window + 2 nominal review periods (day 1d, week 7d, month 31d,
quarter 92d), so late events can still correct the current and the previous period.
An explicit retention must be at least the window.

Partial windows: while a KPI's data began less than a window ago (a new KPI, a new data
source), its value covers only part of the window and is marked partial with its
``coverage``. Below-minimum alerts wait for a full window (``require_full_window: true``,
the default); ``false`` alerts on partial windows too.

Every string and list is bounded (see ``bounds.py`` and the value message contract) and
one-line texts refuse control characters; an owner email is exactly one address.

Validation collects every problem instead of stopping at the first; each names the KPI
and the field, e.g. ``kpi 'churn_rate': formula.ratio.numerator.sum.field: ...``.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Annotated, Any, Final, Literal

import yaml
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    StringConstraints,
    ValidationError,
)

from services.scoring.domain.bounds import (
    MAX_VIEWERS,
    DataCollection,
    Department,
    Objective,
    Role,
    Unit,
)
from services.scoring.domain.durations import format_duration, parse_duration
from services.scoring.domain.formulas import Formula, Scope, Term, compile_terms, scope_conflicts
from shared.contracts.kpi_values import (
    MAX_LINKED_KPIS,
    MAX_OWNERS,
    Direction,
    KpiKey,
    KpiName,
    Owner,
)

Perspective = Literal["financial", "customer", "internal_process", "learning_growth"]
PERSPECTIVES: Final[tuple[Perspective, ...]] = (
    "financial",
    "customer",
    "internal_process",
    "learning_growth",
)
Stage = Literal["attract", "engage", "create_value", "retain", "financial"]
ReviewPeriod = Literal["day", "week", "month", "quarter"]
Indicator = Literal["leading", "lagging"]

#: Nominal lengths used where a fixed length is needed (default retention, lead/lag).
NOMINAL_PERIOD: Final[dict[str, timedelta]] = {
    "day": timedelta(days=1),
    "week": timedelta(days=7),
    "month": timedelta(days=31),
    "quarter": timedelta(days=92),
}
MIN_WINDOW: Final = timedelta(minutes=1)
MAX_WINDOW: Final = timedelta(days=365)
MIN_UPDATE: Final = timedelta(seconds=1)

Duration = Annotated[
    timedelta,
    BeforeValidator(parse_duration),
    PlainSerializer(format_duration, return_type=str),
]
Number = Annotated[float, Field(allow_inf_nan=False)]


class Band(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    low: Number
    high: Number


class TrackingCost(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    amount: Annotated[float, Field(ge=0, allow_inf_nan=False)]
    currency: Annotated[str, StringConstraints(pattern=r"^[A-Z]{3}$")]
    per: Literal["day", "week", "month", "quarter", "year"]


class KpiDefinition(BaseModel):
    """One KPI. Structural rules live here; cross-field rules in ``kpi_problems``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    key: KpiKey
    name: KpiName
    objective: Objective
    perspective: Perspective
    stage: Stage
    department: Department
    owners: Annotated[list[Owner], Field(min_length=1, max_length=MAX_OWNERS)]
    formula: Formula
    window: Duration
    update_every: Duration
    review_period: ReviewPeriod
    unit: Unit
    direction: Direction
    band: Band | None = None
    baseline: Number | None = None
    minimum: Number
    target: Number
    weight: Annotated[float, Field(gt=0, allow_inf_nan=False)]
    expires_on: date
    indicator: Indicator
    leading_indicators: list[KpiKey] = Field(default_factory=list, max_length=MAX_LINKED_KPIS)
    scope: Scope = Field(default_factory=Scope)
    tracking_cost: TrackingCost
    data_collection: DataCollection
    viewers: list[Role] = Field(default_factory=list, max_length=MAX_VIEWERS)
    retention: Duration | None = None
    require_full_window: bool = True

    @property
    def effective_retention(self) -> timedelta:
        if self.retention is not None:
            return self.retention
        return self.window + 2 * NOMINAL_PERIOD[self.review_period]

    @property
    def terms(self) -> tuple[Term, ...]:
        """The aggregated terms (1, or 2 for a ratio) with the scope AND-ed in."""
        return compile_terms(self.formula, self.scope)


class CatalogError(ValueError):
    """The catalog is invalid; ``problems`` lists every problem found."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("invalid catalog:\n" + "\n".join(f"  - {p}" for p in problems))


@dataclass(frozen=True)
class Catalog:
    """A validated, immutable set of KPI definitions, in file order."""

    kpis: tuple[KpiDefinition, ...]
    by_key: Mapping[str, KpiDefinition] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "by_key", {kpi.key: kpi for kpi in self.kpis})

    @classmethod
    def from_definitions(cls, items: Iterable[KpiDefinition | Mapping[str, Any]]) -> Catalog:
        """Validate definitions (models or raw mappings); raise ``CatalogError`` if any fails."""
        problems: list[str] = []
        kpis: list[KpiDefinition] = []
        for index, item in enumerate(items):
            if isinstance(item, KpiDefinition):
                kpis.append(item)
                continue
            label = _label(item, index)
            if not isinstance(item, Mapping):
                problems.append(f"kpi {label}: a KPI definition must be a mapping")
                continue
            try:
                kpis.append(KpiDefinition.model_validate(dict(item)))
            except ValidationError as error:
                problems.extend(_format_errors(label, error))
        for kpi in kpis:
            problems.extend(f"kpi '{kpi.key}': {p}" for p in kpi_problems(kpi))
        problems.extend(_cross_problems(kpis))
        if problems:
            raise CatalogError(problems)
        return cls(tuple(kpis))

    def __iter__(self) -> Iterator[KpiDefinition]:
        return iter(self.kpis)

    def __len__(self) -> int:
        return len(self.kpis)

    def __contains__(self, key: object) -> bool:
        return key in self.by_key

    def __getitem__(self, key: str) -> KpiDefinition:
        return self.by_key[key]

    def keys(self) -> list[str]:
        return [kpi.key for kpi in self.kpis]


def parse_catalog(text: str) -> Catalog:
    """Parse catalog YAML: a list of KPI definitions or ``{kpis: [...]}``."""
    try:
        loaded = yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise CatalogError([f"yaml: {error}"]) from error
    if isinstance(loaded, Mapping) and set(loaded) == {"kpis"}:
        loaded = loaded["kpis"]
    if loaded is None:
        loaded = []
    if not isinstance(loaded, list):
        raise CatalogError(["catalog: expected a list of KPI definitions or {kpis: [...]}"])
    return Catalog.from_definitions(loaded)


def kpi_problems(kpi: KpiDefinition) -> list[str]:
    """Rules that span several fields of one KPI, as ``field: message`` strings."""
    problems: list[str] = []
    if not MIN_WINDOW <= kpi.window <= MAX_WINDOW:
        problems.append("window: must be between 1m and 365d")
    if kpi.update_every < MIN_UPDATE:
        problems.append("update_every: must be at least 1s")
    elif kpi.update_every > kpi.window:
        problems.append(
            f"update_every: {format_duration(kpi.update_every)} is longer than the window "
            f"{format_duration(kpi.window)}"
        )
    if kpi.retention is not None and kpi.retention < kpi.window:
        problems.append("retention: must be at least the window")
    problems.extend(_threshold_problems(kpi))
    for index, side in enumerate(kpi.formula.sides()):
        path = "formula" if kpi.formula.ratio is None else (
            "formula.ratio.numerator" if index == 0 else "formula.ratio.denominator"
        )
        problems.extend(f"{path}.{side.kind}: {p}" for p in scope_conflicts(side, kpi.scope))
    if kpi.key in kpi.leading_indicators:
        problems.append("leading_indicators: a KPI cannot lead itself")
    return problems


def _threshold_problems(kpi: KpiDefinition) -> list[str]:
    minimum, target = kpi.minimum, kpi.target
    if kpi.direction == "higher_is_better" and minimum > target:
        return [f"minimum: {minimum:g} is above target {target:g} (higher_is_better)"]
    if kpi.direction == "lower_is_better" and minimum < target:
        return [f"minimum: {minimum:g} is below target {target:g} (lower_is_better)"]
    if kpi.direction != "target_band":
        return ["band: only allowed with direction target_band"] if kpi.band else []
    if kpi.band is None:
        return ["band: required for direction target_band ({low, high})"]
    problems: list[str] = []
    if kpi.band.low > kpi.band.high:
        problems.append(f"band: low {kpi.band.low:g} is above high {kpi.band.high:g}")
    elif not kpi.band.low <= target <= kpi.band.high:
        problems.append(f"target: {target:g} is outside the band")
    if minimum < 0:
        problems.append("minimum: for target_band it is the tolerated distance, must be >= 0")
    return problems


def _cross_problems(kpis: list[KpiDefinition]) -> list[str]:
    problems: list[str] = []
    seen: set[str] = set()
    for kpi in kpis:
        if kpi.key in seen:
            problems.append(f"kpi '{kpi.key}': key: duplicate key")
        seen.add(kpi.key)
    for kpi in kpis:
        for index, lead in enumerate(kpi.leading_indicators):
            if lead not in seen:
                problems.append(
                    f"kpi '{kpi.key}': leading_indicators.{index}: unknown KPI {lead!r}"
                )
    return problems


def _label(item: object, index: int) -> str:
    if isinstance(item, Mapping) and isinstance(item.get("key"), str):
        return f"'{item['key']}'"
    return f"#{index + 1}"


def _format_errors(label: str, error: ValidationError) -> list[str]:
    out = []
    for detail in error.errors(include_url=False):
        loc = ".".join(str(part) for part in detail["loc"]) or "definition"
        out.append(f"kpi {label}: {loc}: {detail['msg']}")
    return out


# --- diff ---------------------------------------------------------------------------


@dataclass(frozen=True)
class FieldChange:
    field: str  # dotted path, e.g. "formula.ratio.numerator.count.type"
    old: Any
    new: Any


@dataclass(frozen=True)
class KpiChange:
    key: str
    fields: tuple[FieldChange, ...]


@dataclass(frozen=True)
class CatalogDiff:
    created: tuple[KpiDefinition, ...]
    changed: tuple[KpiChange, ...]
    retired: tuple[KpiDefinition, ...]

    @property
    def empty(self) -> bool:
        return not (self.created or self.changed or self.retired)


def diff_catalog(old: Catalog, new: Catalog) -> CatalogDiff:
    """What applying ``new`` over ``old`` does, with field-level changes (dotted paths)."""
    before, after = old.by_key, new.by_key
    created = tuple(kpi for kpi in new if kpi.key not in before)
    retired = tuple(kpi for kpi in old if kpi.key not in after)
    changed: list[KpiChange] = []
    for kpi in new:
        previous = before.get(kpi.key)
        if previous is None or previous == kpi:
            continue
        fields = _dict_diff(previous.model_dump(mode="json"), kpi.model_dump(mode="json"), "")
        if fields:
            changed.append(KpiChange(kpi.key, tuple(fields)))
    return CatalogDiff(created=created, changed=tuple(changed), retired=retired)


def _dict_diff(old: Mapping[str, Any], new: Mapping[str, Any], prefix: str) -> list[FieldChange]:
    changes: list[FieldChange] = []
    for name in [*old, *(k for k in new if k not in old)]:
        path = f"{prefix}{name}"
        left, right = old.get(name), new.get(name)
        if left == right:
            continue
        if isinstance(left, Mapping) and isinstance(right, Mapping):
            changes.extend(_dict_diff(left, right, f"{path}."))
        else:
            changes.append(FieldChange(path, left, right))
    return changes
