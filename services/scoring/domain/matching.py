"""Which KPI terms an event matches: the catalog's filters, compiled for the fold.

Which terms match depends only on the event's source and type and the few properties
the filters read; the answer is remembered per combination (``Plan``), so the fold does
one lookup per event instead of a comparison per term.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final

from services.scoring.domain.buckets import DAY_S
from services.scoring.domain.formulas import SketchKind, Term, same_scalar

MISSING: Final = object()


@dataclass(eq=False, slots=True)
class CompiledTerm:
    kpi_key: str
    term_index: int
    term: Term
    accessor: str  # "count" | "value" | "subject_id" | "property"
    prop: str
    width_s: int
    retention_s: float
    # copied off ``term`` so the per-event path reads plain attributes
    kind: str = field(init=False)
    sketch_kind: SketchKind | None = field(init=False)
    properties: tuple[tuple[str, object], ...] = field(init=False)

    def __post_init__(self) -> None:
        self.kind = self.term.kind
        self.sketch_kind = self.term.sketch_kind
        self.properties = self.term.properties


#: Distinct filter-relevant property combinations remembered per (source, type); past
#: this (a filter on a high-cardinality property), further combinations are matched in full.
PLAN_CACHE_SIZE: Final = 4096


@dataclass(slots=True)
class Plan:
    """The terms an event of one (source, type) may match, and which of them it does.

    Which terms match depends only on the few properties their filters read, and those
    take few distinct values (a channel, a flag), so the answer is remembered per
    combination: one lookup per event instead of a comparison per term. The key holds
    the values' types too, because ``True``, ``1`` and ``1.0`` are equal dict keys but
    not equal filter values (``same_scalar``).
    """

    always: Match  # the terms without a property filter
    filtered: tuple[CompiledTerm, ...]
    names: tuple[str, ...]  # every property a filter of these terms reads
    defaults: tuple[object, ...]  # MISSING for each name
    cache: dict[tuple[tuple[object, ...], tuple[type, ...]], Match] = field(
        default_factory=dict
    )

    @classmethod
    def of(cls, terms: list[CompiledTerm]) -> Plan:
        names = tuple(sorted({name for c in terms for name, _ in c.properties}))
        return cls(
            always=Match([c for c in terms if not c.properties]),
            filtered=tuple(c for c in terms if c.properties),
            names=names,
            defaults=(MISSING,) * len(names),
        )

    def matching(self, properties: Mapping[str, object]) -> Match:
        """The terms an event with ``properties`` matches."""
        if not self.names:
            return self.always
        values = tuple(map(properties.get, self.names, self.defaults))
        key = (values, tuple(map(type, values)))
        try:
            found = self.cache.get(key)
        except TypeError:  # a list or object among the values: match in full
            return self._match(properties)
        if found is None:
            found = self._match(properties)
            if len(self.cache) < PLAN_CACHE_SIZE:
                self.cache[key] = found
        return found

    def _match(self, properties: Mapping[str, object]) -> Match:
        return Match(
            self.always.terms
            + [c for c in self.filtered if props_match(properties, c.properties)]
        )


class Match:
    """The terms one kind of event matches, split the way the fold treats them.

    Identity-hashed: the fold tallies events per match object, so a match is built once
    per cache entry and reused.
    """

    __slots__ = ("counts", "daily", "grain_s", "others", "retention_s", "terms")

    def __init__(self, terms: list[CompiledTerm]) -> None:
        self.terms = terms
        self.counts = tuple(c for c in terms if c.kind == "count")
        self.others = tuple(c for c in terms if c.kind != "count")
        #: Events newer than this many seconds before now are within every term's retention.
        self.retention_s = min((c.retention_s for c in terms), default=0.0)
        sub_day = [c.width_s for c in self.counts if c.width_s != DAY_S]
        #: The finest sub-day width of the count terms, at most 15 minutes: a slot of it
        #: lies in one bucket of every coarser width (the widths divide each other).
        self.grain_s = min([*sub_day, 900])
        self.daily = any(c.width_s == DAY_S for c in self.counts)


def props_match(properties: Mapping[str, object], wanted: tuple[tuple[str, object], ...]) -> bool:
    for name, expected in wanted:
        actual = properties.get(name, MISSING)
        if actual != expected or not same_scalar(actual, expected):
            return False
    return True
