"""Starter catalogs: valid, one KPI of each of the guide's six kinds, written by the CLI."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from services import cli
from services.scoring.domain.catalog import parse_catalog
from services.scoring.templates import KINDS, TEMPLATES, template_text

EXAMPLE = Path(__file__).resolve().parents[3] / "catalog" / "example.yaml"


@pytest.mark.parametrize("name", TEMPLATES)
def test_each_template_is_valid_and_covers_the_six_kinds(name: str) -> None:
    text = template_text(name)
    catalog = parse_catalog(text)
    assert tuple(re.findall(r"^# kind: (\w+)", text, re.MULTILINE)) == KINDS
    assert len(catalog) == len(KINDS)
    assert any(kpi.formula.is_reported for kpi in catalog)
    assert all(kpi.tracking_cost.currency == "VND" for kpi in catalog)


def test_catalog_init_writes_a_template_and_keeps_existing_files(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "hr.yaml"
    assert cli.main(["catalog", "init", "--template", "hr", str(target)]) == 0
    assert parse_catalog(target.read_text()).keys()[0] == "cost_per_hire"
    assert cli.main(["catalog", "init", "--template", "sales", str(target)]) == 1
    assert "exists; pass --force" in capsys.readouterr().err
    assert cli.main(["catalog", "init", "--template", "sales", str(target), "--force"]) == 0
    assert "revenue" in parse_catalog(target.read_text())


def test_the_example_catalog_has_an_hr_department_with_people_kpis() -> None:
    catalog = parse_catalog(EXAMPLE.read_text())
    people = [kpi for kpi in catalog if kpi.department == "hr"]
    assert {kpi.perspective for kpi in people} >= {"learning_growth"}
    assert all(kpi.formula.is_reported for kpi in people)
    assert catalog["cost_per_hire"].currency == "VND"
    assert "VND" in {kpi.tracking_cost.currency for kpi in catalog}
