"""The alert state machine: hold-down, hysteresis, direction, repeats."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from services.alerts.domain.conditions import has_recovered, is_worse
from services.alerts.domain.lifecycle import OpenAlert, State, Transition, repeat_due, step
from services.scoring.domain.scoring import assess
from shared.contracts.kpi_values import Direction, KpiStatus
from tests.unit.scoring.factories import make_kpi

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def test_no_alert_while_fine() -> None:
    assert step(None, worse=False, recovered=True, now=T0, hold_down_s=60) == []


def test_zero_hold_down_fires_at_once_through_pending() -> None:
    steps = step(None, worse=True, recovered=False, now=T0, hold_down_s=0)
    assert steps == [
        Transition(None, State.PENDING, None),
        Transition(State.PENDING, State.FIRING, "firing"),
    ]


def test_hold_down_keeps_pending_until_it_elapses() -> None:
    assert step(None, worse=True, recovered=False, now=T0, hold_down_s=300) == [
        Transition(None, State.PENDING, None)
    ]
    pending = OpenAlert(State.PENDING, T0)
    early = T0 + timedelta(seconds=299)
    assert step(pending, worse=True, recovered=False, now=early, hold_down_s=300) == []
    late = T0 + timedelta(seconds=300)
    assert step(pending, worse=True, recovered=False, now=late, hold_down_s=300) == [
        Transition(State.PENDING, State.FIRING, "firing")
    ]


def test_pending_that_clears_is_resolved_without_a_notice() -> None:
    pending = OpenAlert(State.PENDING, T0)
    assert step(pending, worse=False, recovered=False, now=T0, hold_down_s=300) == [
        Transition(State.PENDING, State.RESOLVED, None)
    ]


def test_firing_resolves_only_when_recovered() -> None:
    firing = OpenAlert(State.FIRING, T0)
    assert step(firing, worse=False, recovered=False, now=T0, hold_down_s=0) == []
    assert step(firing, worse=False, recovered=True, now=T0, hold_down_s=0) == [
        Transition(State.FIRING, State.RESOLVED, "resolved")
    ]


def _simulate(
    values: list[float], minimum: float, direction: Direction, margin: float
) -> list[str]:
    """Feed values through the machine; return the notices it would send."""
    current: OpenAlert | None = None
    notices: list[str] = []
    for i, value in enumerate(values):
        status = _status(value, minimum, direction)
        worse = is_worse(status)
        recovered = has_recovered(
            value,
            minimum,
            direction,
            status=status,
            margin=margin,
        )
        now = T0 + timedelta(minutes=i)
        for t in step(current, worse=worse, recovered=recovered, now=now, hold_down_s=0):
            if t.notify:
                notices.append(t.notify)
            current = None if t.to_state is State.RESOLVED else OpenAlert(t.to_state, now)
    return notices


def _status(value: float, minimum: float, direction: Direction) -> KpiStatus:
    """The status scoring decides and carries on the KPI value message."""
    target = minimum * 2 if direction == "higher_is_better" else minimum / 2
    return assess(make_kpi(minimum=minimum, target=target, direction=direction), value).status


def test_kpi_hovering_around_its_minimum_does_not_flap() -> None:
    # Minimum 0.10, margin 2 % → recovery needs ≥ 0.102; values wobble around 0.10.
    hovering = [0.099, 0.1005, 0.0995, 0.101, 0.0999, 0.1015, 0.0998, 0.1001]
    assert _simulate(hovering, 0.10, "higher_is_better", 0.02) == ["firing"]
    # Without hysteresis the same series would flap on every crossing.
    assert _simulate(hovering, 0.10, "higher_is_better", 0.0).count("firing") == 4


def test_clear_recovery_resolves_once() -> None:
    series = [0.08, 0.09, 0.11, 0.12, 0.13]
    assert _simulate(series, 0.10, "higher_is_better", 0.02) == ["firing", "resolved"]


def test_lower_is_better_breaches_above_its_limit() -> None:
    # Churn: limit 5 %, worse means above; recovery needs ≤ 4.9 % with a 2 % margin.
    assert is_worse(_status(0.06, 0.05, "lower_is_better"))
    assert not is_worse(_status(0.04, 0.05, "lower_is_better"))
    assert not has_recovered(0.0495, 0.05, "lower_is_better", status="", margin=0.02)
    assert has_recovered(0.049, 0.05, "lower_is_better", status="", margin=0.02)
    series = [0.04, 0.06, 0.0499, 0.051, 0.045]
    assert _simulate(series, 0.05, "lower_is_better", 0.02) == ["firing", "resolved"]


def test_higher_is_better_breaches_below_its_minimum() -> None:
    assert is_worse(_status(0.09, 0.10, "higher_is_better"))
    assert not is_worse(_status(0.10, 0.10, "higher_is_better"))


def test_alerts_follow_the_breach_scoring_decided() -> None:
    # The breach is decided once, by scoring, and carried on the message.
    assert is_worse("breach")
    assert not is_worse("below_target")
    assert not is_worse("on_target")
    assert not is_worse("no_data")
    assert has_recovered(5.0, 1.0, "target_band", status="on_target", margin=0.02)


def _due(state: State, *, acked: bool = False, one_shot: bool = False, last: datetime = T0) -> bool:
    return repeat_due(
        state=state,
        acked=acked,
        one_shot=one_shot,
        last_notified_at=last,
        now=T0 + timedelta(hours=4),
        repeat_interval_s=4 * 3600,
    )


def test_repeat_only_when_firing_unacked_and_quiet_long_enough() -> None:
    assert _due(State.FIRING)
    assert not _due(State.FIRING, acked=True)
    assert not _due(State.FIRING, one_shot=True)
    assert not _due(State.RESOLVED)
    assert not _due(State.PENDING)
    assert not _due(State.FIRING, last=T0 + timedelta(hours=1))
