"""The alert state machine: pending (hold-down) → firing → resolved.

``step`` is given the open alert (if any) and what the latest evaluation says, and
returns the transitions to record. A pending alert whose condition clears before the
hold-down ends is resolved silently: the owner never heard of it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum


class State(StrEnum):
    PENDING = "pending"
    FIRING = "firing"
    RESOLVED = "resolved"


@dataclass(frozen=True, slots=True)
class OpenAlert:
    state: State
    started_at: datetime


@dataclass(frozen=True, slots=True)
class Transition:
    from_state: State | None
    to_state: State
    # Which notice this transition sends, if any: "firing" or "resolved".
    notify: str | None


def step(
    current: OpenAlert | None,
    *,
    worse: bool,
    recovered: bool,
    now: datetime,
    hold_down_s: float,
) -> list[Transition]:
    """Transitions caused by one evaluation. ``recovered`` implies not ``worse``."""
    fire = Transition(State.PENDING, State.FIRING, "firing")
    steps: list[Transition] = []
    if current is None:
        if worse:
            steps.append(Transition(None, State.PENDING, None))
            if hold_down_s <= 0:
                steps.append(fire)
    elif current.state is State.PENDING:
        if not worse:
            steps.append(Transition(State.PENDING, State.RESOLVED, None))
        elif now - current.started_at >= timedelta(seconds=hold_down_s):
            steps.append(fire)
    elif current.state is State.FIRING and recovered:
        steps.append(Transition(State.FIRING, State.RESOLVED, "resolved"))
    # Firing and not clearly recovered (inside the hysteresis band): hold.
    return steps


def repeat_due(
    *,
    state: State,
    acked: bool,
    one_shot: bool,
    last_notified_at: datetime | None,
    now: datetime,
    repeat_interval_s: float,
) -> bool:
    """Firing, not acknowledged and quiet for a whole repeat interval."""
    if state is not State.FIRING or acked or one_shot or last_notified_at is None:
        return False
    return now - last_notified_at >= timedelta(seconds=repeat_interval_s)
