"""Direction-aware status and score of a KPI value, and the balanced scorecard.

Status:
- ``no_data``      — the value is None;
- ``breach``       — strictly worse than the minimum;
- ``below_target`` — from the minimum (inclusive) up to, not including, the target;
- ``on_target``    — at or beyond the target.

Score (0-100), linear between minimum and target:
- higher_is_better: ``100 * (value - minimum) / (target - minimum)``, clamped to [0, 100];
- lower_is_better:  ``100 * (minimum - value) / (minimum - target)``, clamped;
- when minimum == target the score is 100 on target and 0 otherwise;
- target_band (``band: {low, high}``, ``minimum`` = tolerated distance ``d``): with
  ``distance`` = how far the value lies outside the band (0 inside),
  ``100 * (1 - distance / d)`` clamped (100 inside the band; 0 at or beyond ``d``).
So a value exactly at the minimum scores 0 but is ``below_target``; a breach also scores
0 — the status, not the score, tells them apart. ``no_data`` has no score (None).

Scorecard: per perspective and overall, the weight-weighted mean of the scores of the
KPIs that have data; KPIs in ``no_data`` are skipped (listed apart), and so are expired
KPIs (past ``expires_on``) until they are renewed (listed apart too). A perspective (or
the whole card) with no scored KPI has score None. The overall score weighs every scored
KPI by its own weight (it is not a mean of perspective means).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date

from services.scoring.domain.catalog import PERSPECTIVES, KpiDefinition, Perspective
from shared.contracts.kpi_values import KpiStatus


def as_status(raw: str) -> KpiStatus:
    """A status read back from storage; anything unknown counts as ``no_data``."""
    for status in ("breach", "below_target", "on_target", "no_data"):
        if raw == status:
            return status
    return "no_data"


@dataclass(frozen=True, slots=True)
class Assessment:
    status: KpiStatus
    score: float | None


def assess(kpi: KpiDefinition, value: float | None) -> Assessment:
    """Status and score of ``value`` against the KPI's minimum, target and direction."""
    if value is None:
        return Assessment("no_data", None)
    if kpi.direction == "target_band":
        return _assess_band(kpi, value)
    minimum, target = kpi.minimum, kpi.target
    # Orient so that "bigger is better" in both directions.
    sign = 1.0 if kpi.direction == "higher_is_better" else -1.0
    v, lo, hi = sign * value, sign * minimum, sign * target
    if v >= hi:
        return Assessment("on_target", 100.0)
    if v < lo:
        return Assessment("breach", 0.0)
    return Assessment("below_target", _clamp(100.0 * (v - lo) / (hi - lo)))


def _assess_band(kpi: KpiDefinition, value: float) -> Assessment:
    if kpi.band is None:
        raise ValueError(f"kpi {kpi.key!r}: target_band without a band")
    distance = max(kpi.band.low - value, value - kpi.band.high, 0.0)
    tolerance = kpi.minimum
    if distance == 0:
        return Assessment("on_target", 100.0)
    if distance > tolerance:
        return Assessment("breach", 0.0)
    return Assessment("below_target", _clamp(100.0 * (1 - distance / tolerance)))


def _clamp(score: float) -> float:
    return min(100.0, max(0.0, score))


@dataclass(frozen=True, slots=True)
class ScoreEntry:
    key: str
    perspective: Perspective
    weight: float
    status: KpiStatus
    score: float | None
    expired: bool = False


def is_expired(kpi: KpiDefinition, today: date) -> bool:
    """Past its expiry date (``today`` in the company's time zone): the KPI was set for a
    period that is over and must be reviewed or renewed. The date itself still counts."""
    return today > kpi.expires_on


@dataclass(frozen=True, slots=True)
class Expiry:
    """Where a KPI stands against its expiry date on the company's calendar."""

    days_left: int  # negative once expired
    expired: bool
    expiring_soon: bool  # within the warning days (alerts' expiring_soon), not expired


def expiry(kpi: KpiDefinition, today: date, warning_days: int) -> Expiry:
    days = (kpi.expires_on - today).days
    return Expiry(days, days < 0, 0 <= days <= warning_days)


def score_entry(kpi: KpiDefinition, value: float | None, today: date | None = None) -> ScoreEntry:
    assessment = assess(kpi, value)
    expired = today is not None and is_expired(kpi, today)
    return ScoreEntry(
        kpi.key, kpi.perspective, kpi.weight, assessment.status, assessment.score, expired
    )


@dataclass(frozen=True, slots=True)
class PerspectiveScore:
    score: float | None
    weight: float  # total weight of the KPIs that were scored
    kpis: tuple[str, ...]  # scored KPIs
    no_data: tuple[str, ...]  # skipped KPIs without data
    expired: tuple[str, ...] = ()  # skipped KPIs past their expiry date


@dataclass(frozen=True, slots=True)
class Scorecard:
    overall: float | None
    per_perspective: dict[Perspective, PerspectiveScore]


def scorecard(entries: Iterable[ScoreEntry]) -> Scorecard:
    """Weighted mean of scores per perspective and overall, skipping ``no_data``.

    An expired KPI is skipped too, until it is renewed (its expiry date moved): its
    minimum and target were set for a period that is over, so its score no longer says
    how the strategy is doing. It is still shown, with its value, flagged expired.
    """
    scored: dict[Perspective, list[ScoreEntry]] = {p: [] for p in PERSPECTIVES}
    skipped: dict[Perspective, list[str]] = {p: [] for p in PERSPECTIVES}
    expired: dict[Perspective, list[str]] = {p: [] for p in PERSPECTIVES}
    for entry in entries:
        if entry.expired:
            expired[entry.perspective].append(entry.key)
        elif entry.score is None or entry.status == "no_data":
            skipped[entry.perspective].append(entry.key)
        else:
            scored[entry.perspective].append(entry)
    per = {
        p: PerspectiveScore(
            _weighted_mean(scored[p]),
            sum(e.weight for e in scored[p]),
            tuple(e.key for e in scored[p]),
            tuple(skipped[p]),
            tuple(expired[p]),
        )
        for p in PERSPECTIVES
    }
    return Scorecard(_weighted_mean([e for p in PERSPECTIVES for e in scored[p]]), per)


def _weighted_mean(entries: list[ScoreEntry]) -> float | None:
    weight = sum(e.weight for e in entries)
    if not entries or weight <= 0:
        return None
    return sum(e.weight * (e.score or 0.0) for e in entries) / weight
