"""What the README promises of ``make simulate``: Complaints received ends in breach.

``make simulate`` posts 14 simulated days ending in the complaints spike; the README says
the example catalog's *Complaints received* turns red. Counted here over the KPI's own
window and assessed with its own minimum, for several seeds.
"""

from __future__ import annotations

import random
import re
from datetime import UTC, datetime
from pathlib import Path

import pytest

from services.scoring.domain.catalog import parse_catalog
from services.scoring.domain.scoring import assess
from services.simulator.generator import Scenario, simulated_days

ROOT = Path(__file__).resolve().parents[3]
NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


def make_simulate_args() -> tuple[int, Scenario]:
    """The days and scenario the Makefile's ``simulate`` target passes."""
    recipe = (ROOT / "Makefile").read_text().split("\nsimulate:", 1)[1].split("\n\n", 1)[0]
    days = re.search(r"--days (\d+)", recipe)
    scenario = re.search(r"--scenario (\w+)", recipe)
    assert days and scenario, recipe
    assert scenario.group(1) == "complaints_spike"
    return int(days.group(1)), "complaints_spike"


def complaints_status(seed: int, days: int, scenario: Scenario) -> tuple[int, str]:
    kpi = parse_catalog((ROOT / "catalog/example.yaml").read_text())["complaints"]
    since = NOW - kpi.window
    count = sum(
        1
        for events in simulated_days(random.Random(seed), days=days, now=NOW, scenario=scenario)
        for event in events
        if event["type"] == "complaint_received"
        and datetime.fromisoformat(event["occurred_at"]) > since
    )
    return count, assess(kpi, float(count)).status


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_make_simulate_turns_complaints_red(seed: int) -> None:
    days, scenario = make_simulate_args()
    count, status = complaints_status(seed, days, scenario)
    assert status == "breach", f"{count} complaints"


def test_a_steady_month_of_complaints_is_not_a_breach() -> None:
    count, status = complaints_status(1, 30, "steady")
    assert status != "breach", f"{count} complaints"
