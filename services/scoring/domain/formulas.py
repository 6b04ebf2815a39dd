"""KPI formula shapes, and their compilation into the *terms* the fold aggregates.

A formula is a mapping with exactly one key::

    {count: FILTER}                                  number of matching events
    {sum: {field: F, ...FILTER}}                     sum of a numeric field
    {average: {field: F, ...FILTER}}                 sum / count of a numeric field
    {min: {field: F, ...FILTER}}  {max: ...}         extremes of a numeric field
    {distinct: {field: F, ...FILTER}}                distinct values (HyperLogLog, lg_k=12)
    {percentile: {field: F, q: 0.9, ...FILTER}}      quantile (KLL doubles sketch, k=200)
    {ratio: {numerator: SIMPLE, denominator: SIMPLE}} each side any non-ratio formula

FILTER has optional ``source`` (web|crm|email|support), ``type`` (an event type or a list
of them: any of) and ``properties`` (exact match on ``event.properties``; a YAML ``true``
only matches a JSON ``true``, never ``1``). An empty filter matches every event.

A field is ``value`` (the envelope's value) or ``properties.<name>``; ``distinct`` also
accepts ``subject_id``. Numeric formulas only use int/float values (booleans and numeric
strings are not numbers): an event whose field is missing or not numeric is skipped for
that term and counted as skipped. Unknown keys anywhere in a formula are errors.

The KPI's ``scope`` (``{source?, properties}``) is AND-ed into every term's filter.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Annotated, Any, Final, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, model_validator

from shared.contracts.events import EventType, Source

SimpleKind = Literal["count", "sum", "average", "min", "max", "distinct", "percentile"]
FormulaKind = Literal["count", "sum", "average", "min", "max", "distinct", "percentile", "ratio"]
SketchKind = Literal["hll", "kll"]

SIMPLE_KINDS: Final[tuple[SimpleKind, ...]] = (
    "count",
    "sum",
    "average",
    "min",
    "max",
    "distinct",
    "percentile",
)
#: Formulas whose value over a longer span is the sum of the values over its parts; period
#: analysis pro-rates their target by elapsed time.
ADDITIVE_KINDS: Final[frozenset[str]] = frozenset({"count", "sum"})

Scalar = str | int | float | bool

_NUMERIC_FIELD = r"^(value|properties\.[A-Za-z0-9_][A-Za-z0-9_.\-]{0,127})$"
_DISTINCT_FIELD = r"^(value|subject_id|properties\.[A-Za-z0-9_][A-Za-z0-9_.\-]{0,127})$"


def _one_or_many(value: object) -> object:
    return [value] if isinstance(value, str) else value


# A filter is compared with every event the scorer folds, and copied into every stored
# definition and read of it: bounded like everything else in a definition. A property
# name is as long as a field path's ``properties.<name>`` may name; any printable
# characters, since they must match what senders put in their events.
MAX_PROPERTIES: Final = 20
MAX_PROPERTY_NAME: Final = 128
MAX_PROPERTY_VALUE: Final = 1000
MAX_EVENT_TYPES: Final = 50
_CONTROL: Final = re.compile("[\x00-\x1f\x7f-\x9f]")


def _scalar_values(value: dict[str, Any]) -> dict[str, Any]:
    if len(value) > MAX_PROPERTIES:
        raise ValueError(f"at most {MAX_PROPERTIES} properties")
    for name, item in value.items():
        if not 0 < len(name) <= MAX_PROPERTY_NAME or _CONTROL.search(name):
            raise ValueError(
                f"property name {name[:40]!r}: 1 to {MAX_PROPERTY_NAME} printable characters"
            )
        if not isinstance(item, str | int | float | bool):
            raise ValueError(f"property {name!r} must be a string, number or boolean")
        if isinstance(item, float) and not math.isfinite(item):
            raise ValueError(f"property {name!r} must be finite")
        if isinstance(item, str) and len(item) > MAX_PROPERTY_VALUE:
            raise ValueError(f"property {name!r}: at most {MAX_PROPERTY_VALUE} characters")
    return value


EventTypes = Annotated[
    tuple[EventType, ...],
    BeforeValidator(_one_or_many),
    Field(min_length=1, max_length=MAX_EVENT_TYPES),
]
PropertyMatch = Annotated[dict[str, Any], AfterValidator(_scalar_values)]


class Filter(BaseModel):
    """Which events a term looks at; every given condition must hold."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    source: Source | None = None
    type: EventTypes | None = None
    properties: PropertyMatch = Field(default_factory=dict)


class FieldFilter(Filter):
    field: Annotated[str, Field(pattern=_NUMERIC_FIELD)]


class DistinctFilter(Filter):
    field: Annotated[str, Field(pattern=_DISTINCT_FIELD)]


class PercentileFilter(FieldFilter):
    q: Annotated[float, Field(gt=0, le=1)] = 0.5


class Scope(BaseModel):
    """The KPI's extra filter (team, product, region, channel...), AND-ed into every term."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    source: Source | None = None
    properties: PropertyMatch = Field(default_factory=dict)


class SimpleFormula(BaseModel):
    """Exactly one of the non-ratio shapes."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    count: Filter | None = None
    sum: FieldFilter | None = None
    average: FieldFilter | None = None
    min: FieldFilter | None = None
    max: FieldFilter | None = None
    distinct: DistinctFilter | None = None
    percentile: PercentileFilter | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> SimpleFormula:
        given = [name for name in self._shapes() if getattr(self, name) is not None]
        if len(given) != 1:
            raise ValueError(f"exactly one of {', '.join(self._shapes())} is required")
        return self

    @classmethod
    def _shapes(cls) -> tuple[str, ...]:
        return SIMPLE_KINDS

    @property
    def kind(self) -> FormulaKind:
        for name in SIMPLE_KINDS:
            if getattr(self, name) is not None:
                return name
        return "ratio"

    def spec(self) -> Filter:
        """The filter (with field/q where the shape has them) of a simple formula."""
        kind = self.kind
        if kind == "ratio":
            raise TypeError("a ratio has no single filter; use sides()")
        found: Filter = getattr(self, kind)
        return found

    def sides(self) -> tuple[SimpleFormula, ...]:
        """The simple formulas whose aggregates are kept: term 0, then term 1 for a ratio."""
        return (self,)


class Ratio(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    numerator: SimpleFormula
    denominator: SimpleFormula


class Formula(SimpleFormula):
    """A KPI formula: a simple shape or a ratio of two simple shapes."""

    ratio: Ratio | None = None

    @classmethod
    def _shapes(cls) -> tuple[str, ...]:
        return (*SIMPLE_KINDS, "ratio")

    def sides(self) -> tuple[SimpleFormula, ...]:
        if self.ratio is not None:
            return (self.ratio.numerator, self.ratio.denominator)
        return (self,)


@dataclass(frozen=True, slots=True)
class Term:
    """One aggregated quantity of a KPI with its scope already AND-ed in.

    ``sources``/``types`` of ``None`` mean "any". ``never`` marks a filter that cannot
    match (e.g. scope and formula ask for different sources); catalog validation reports
    it, the fold simply skips it.
    """

    kind: SimpleKind
    sources: frozenset[str] | None
    types: frozenset[str] | None
    properties: tuple[tuple[str, Scalar], ...]
    field: str | None
    q: float | None
    never: bool = False

    @property
    def sketch_kind(self) -> SketchKind | None:
        if self.kind == "distinct":
            return "hll"
        if self.kind == "percentile":
            return "kll"
        return None

    def accepts(self, source: str, event_type: str) -> bool:
        if self.never:
            return False
        if self.sources is not None and source not in self.sources:
            return False
        return self.types is None or event_type in self.types


def scope_conflicts(side: SimpleFormula, scope: Scope) -> list[str]:
    """Why ``side``'s filter can never match within ``scope`` (empty when it can)."""
    spec = side.spec()
    problems: list[str] = []
    if scope.source is not None and spec.source is not None and scope.source != spec.source:
        problems.append(
            f"source {spec.source!r} contradicts scope.source {scope.source!r}"
        )
    for name, wanted in scope.properties.items():
        if name in spec.properties and not same_scalar(spec.properties[name], wanted):
            problems.append(f"properties.{name} contradicts scope.properties.{name}")
    return problems


def same_scalar(left: object, right: object) -> bool:
    """Exact-match equality that keeps booleans apart from numbers (``True != 1``)."""
    return left == right and isinstance(left, bool) == isinstance(right, bool)


def compile_terms(formula: Formula, scope: Scope) -> tuple[Term, ...]:
    return tuple(_compile_side(side, scope) for side in formula.sides())


def _compile_side(side: SimpleFormula, scope: Scope) -> Term:
    kind = side.kind
    assert kind != "ratio"  # sides() never yields a ratio
    spec = side.spec()
    never = bool(scope_conflicts(side, scope))
    source = scope.source if scope.source is not None else spec.source
    properties: dict[str, Scalar] = {**spec.properties, **scope.properties}
    field = getattr(spec, "field", None)
    q = getattr(spec, "q", None)
    return Term(
        kind=kind,
        sources=None if source is None else frozenset({source}),
        types=None if spec.type is None else frozenset(spec.type),
        properties=tuple(sorted(properties.items())),
        field=field,
        q=q,
        never=never,
    )


def numeric(raw: object) -> float | None:
    """``raw`` as a finite float, or None when it is not a real number (bools are not)."""
    kind = type(raw)
    if kind is float:
        number: float = raw  # type: ignore[assignment]
        return number if math.isfinite(number) else None
    if kind is int:
        return float(raw)  # type: ignore[arg-type]
    return None


def field_getter(field: str) -> tuple[Literal["value", "subject_id", "property"], str]:
    """Split a field path into its accessor and (for properties) the property name."""
    if field == "value":
        return "value", ""
    if field == "subject_id":
        return "subject_id", ""
    return "property", field.removeprefix("properties.")

