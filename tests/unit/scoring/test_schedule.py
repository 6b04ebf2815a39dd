"""The evaluator's schedule: which KPIs are due, looking only at the due and the changed."""

from __future__ import annotations

from datetime import timedelta

from services.scoring.domain.catalog import Catalog
from services.scoring.schedule import Schedule
from tests.unit.scoring.factories import T0, make_catalog, make_kpi

MINUTE = make_kpi(key="minute", update_every="1m")
HOUR = make_kpi(key="hour", update_every="1h")
CHANGED_EVERY = timedelta(seconds=1)


def _due(
    schedule: Schedule, catalog: Catalog, at: timedelta, changed: frozenset[str] = frozenset()
) -> set[str]:
    kpis = schedule.due(catalog, T0 + at, changed=changed, changed_every=CHANGED_EVERY)
    schedule.evaluated((k.key for k in kpis), T0 + at)
    return {k.key for k in kpis}


def test_every_kpi_is_due_at_first_then_after_its_update_interval() -> None:
    schedule, catalog = Schedule(), make_catalog(MINUTE, HOUR)
    assert _due(schedule, catalog, timedelta(0)) == {"minute", "hour"}
    assert _due(schedule, catalog, timedelta(seconds=59)) == set()
    assert _due(schedule, catalog, timedelta(seconds=60)) == {"minute"}
    assert _due(schedule, catalog, timedelta(minutes=59, seconds=59)) == {"minute"}
    assert _due(schedule, catalog, timedelta(hours=1)) == {"hour"}


def test_a_changed_kpi_is_due_after_the_change_interval_and_its_schedule_moves() -> None:
    schedule, catalog = Schedule(), make_catalog(MINUTE, HOUR)
    _due(schedule, catalog, timedelta(0))
    assert _due(schedule, catalog, timedelta(milliseconds=500), frozenset({"minute"})) == set()
    changed = frozenset({"minute", "gone"})
    assert _due(schedule, catalog, timedelta(seconds=30), changed) == {"minute"}
    # Evaluated at 30 s: next due at 90 s, not at 60 s.
    assert _due(schedule, catalog, timedelta(seconds=60)) == set()
    assert _due(schedule, catalog, timedelta(seconds=90)) == {"minute"}


def test_a_new_catalog_keeps_the_times_of_kpis_it_keeps() -> None:
    schedule = Schedule()
    _due(schedule, make_catalog(MINUTE, HOUR), timedelta(0))
    faster = make_kpi(key="hour", update_every="5m")
    catalog = make_catalog(MINUTE, faster, make_kpi(key="new"))
    assert _due(schedule, catalog, timedelta(seconds=10)) == {"new"}
    assert _due(schedule, catalog, timedelta(minutes=1)) == {"minute"}  # new: at 1m10s
    assert _due(schedule, catalog, timedelta(minutes=5)) == {"minute", "hour", "new"}


def test_a_derived_kpi_is_due_whenever_one_of_its_inputs_is() -> None:
    schedule = Schedule()
    derived = make_kpi(
        key="ratio", update_every="1h", formula={"derived": "minute / hour"}, minimum=0, target=1
    )
    catalog = make_catalog(MINUTE, HOUR, derived)
    assert _due(schedule, catalog, timedelta(0)) == {"minute", "hour", "ratio"}
    assert _due(schedule, catalog, timedelta(seconds=30)) == set()
    assert _due(schedule, catalog, timedelta(minutes=1)) == {"minute", "ratio"}
    changed = frozenset({"hour"})
    assert _due(schedule, catalog, timedelta(minutes=1, seconds=30), changed) == {"hour", "ratio"}
