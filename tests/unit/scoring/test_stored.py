"""A stored catalog with definitions an older version's looser rules let in."""

from __future__ import annotations

from services.scoring.domain.catalog import Catalog
from services.scoring.domain.stored import usable_definitions
from tests.unit.scoring.factories import kpi_dict


def test_a_stored_definition_that_no_longer_validates_is_left_out_and_named() -> None:
    good = kpi_dict(key="good", leading_indicators=["old"])
    old = kpi_dict(key="old", owners=[{"name": "Lan", "email": "Lan <lan@example.com>"}])
    kpis, problems = usable_definitions([good, old])
    assert [kpi.key for kpi in kpis] == ["good"]
    assert kpis[0].leading_indicators == []  # the link to the one left out is dropped
    assert any(p.startswith("kpi 'old': owners.0.email") for p in problems), problems
    Catalog.from_definitions(kpis)  # what is left is a valid catalog


def test_a_part_of_the_catalog_keeps_its_links_as_stored() -> None:
    kpis, problems = usable_definitions(
        [kpi_dict(key="lagging", leading_indicators=["elsewhere"])], whole=False
    )
    assert kpis[0].leading_indicators == ["elsewhere"] and problems == []
