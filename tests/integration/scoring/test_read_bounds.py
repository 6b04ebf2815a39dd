"""Scoring's API under extreme parameters and hostile definitions: a named 4xx, never a
500, and nothing stored."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.conftest import ADMIN_TOKEN
from tests.unit.scoring.factories import kpi_dict

ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


@pytest.mark.parametrize(
    ("params", "named"),
    [
        ({"from": "0001-01-01T00:00:00Z"}, "'from'"),
        ({"from": "0001-01-01T00:00:00+01:00"}, "'from'"),
        ({"to": "9999-12-31T23:59:59Z"}, "'to'"),
        ({"to": "9999-12-31T23:59:59-05:00", "step": 365 * 86400}, "'to'"),
        ({"from": "1969-12-31T23:59:59Z", "to": "1970-01-02T00:00:00Z"}, "'from'"),
    ],
)
async def test_history_outside_the_answerable_range_is_a_400_naming_it(
    scoring_app: httpx.AsyncClient, params: dict[str, Any], named: str
) -> None:
    response = await scoring_app.get("/v1/kpis/complaints/history", params=params, headers=ADMIN)
    assert response.status_code == 400, response.text
    detail = response.json()["detail"]
    assert named in detail and "1970-01-01T00:00:00Z" in detail and "2200-01-01" in detail


async def test_history_at_the_edges_of_the_range_answers(scoring_app: httpx.AsyncClient) -> None:
    earliest: dict[str, str | int] = {
        "from": "1970-01-01T00:00:00Z",
        "to": "1970-01-02T00:00:00Z",
        "step": 3600,
    }
    first = await scoring_app.get(
        "/v1/kpis/complaints/history", params=earliest, headers=ADMIN
    )
    assert first.status_code == 200, first.text
    assert first.json()["points"][0]["value"] is None
    latest: dict[str, str | int] = {
        "from": "2199-12-31T00:00:00Z",
        "to": "2200-01-01T00:00:00Z",
        "step": 86400,
    }
    last = await scoring_app.get(
        "/v1/kpis/complaints/history", params=latest, headers=ADMIN
    )
    assert last.status_code == 200, last.text


@pytest.mark.parametrize(
    "path", ["/v1/kpis/a%00b", "/v1/kpis/a%00b/changes", "/v1/kpis/" + "k" * 5000]
)
async def test_a_key_no_kpi_can_have_is_refused_before_any_query(
    scoring_app: httpx.AsyncClient, path: str
) -> None:
    response = await scoring_app.get(path, headers=ADMIN)
    assert response.status_code == 404, response.text
    assert "KPI keys match" in response.text and "k" * 100 not in response.text


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"name": "x" * 900_000}, "name"),
        ({"owners": [{"name": f"o{i}", "email": "o@example.com"} for i in range(5000)]}, "owners"),
        ({"viewers": [f"r{i}" for i in range(20_000)]}, "viewers"),
        ({"name": "Complaints\nBcc: attacker@evil.example"}, "name"),
        ({"owners": [{"name": "Mai", "email": "mai@example.com, attacker@evil.example"}]}, "email"),
        (
            {"owners": [{"name": "Mai", "webhook_url": "https://h.example/" + "a" * 1000}]},
            "webhook_url",
        ),
    ],
)
async def test_a_hostile_definition_is_a_422_naming_the_field_and_is_not_stored(
    scoring_app: httpx.AsyncClient, overrides: dict[str, Any], field: str
) -> None:
    body = kpi_dict(key="hostile", **overrides)
    created = await scoring_app.post("/v1/kpis", json=body, headers=ADMIN)
    assert created.status_code == 422
    locations = [".".join(map(str, error["loc"])) for error in created.json()["detail"]]
    assert any(field in loc for loc in locations), locations
    replaced = await scoring_app.put(
        "/v1/kpis/complaints", json=kpi_dict(key="complaints", **overrides), headers=ADMIN
    )
    assert replaced.status_code == 422
    assert (await scoring_app.get("/v1/kpis/hostile", headers=ADMIN)).status_code == 404
    listing = (await scoring_app.get("/v1/kpis", headers=ADMIN)).json()["kpis"]
    assert {k["key"]: k["name"] for k in listing}["complaints"] == "Complaints"
