"""Hostile KPI definitions: every string and list is bounded, consistently with where it
ends (alerts' columns), and every refusal names the KPI and the field."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import String

from services.alerts.tables import kpi_latest, outbox
from services.scoring.domain.catalog import Catalog, CatalogError, parse_catalog
from shared.contracts.kpi_values import KpiValueMessage, Owner
from tests.unit.scoring.factories import T0, kpi_dict

MAX_OWNER = {
    "name": "N" * 200,
    "email": f"{'l' * 64}@{'d' * 60}.{'e' * 60}.{'x' * 55}.example.com",
    "webhook_url": "https://hooks.example.com/" + "w" * (1000 - 26),
    "slack_webhook_url": "https://hooks.slack.com/" + "s" * (1000 - 24),
}


def problems(**overrides: Any) -> list[str]:
    with pytest.raises(CatalogError) as caught:
        Catalog.from_definitions([kpi_dict(**overrides)])
    return caught.value.problems


def owner(**fields: Any) -> list[dict[str, Any]]:
    return [{"name": "Lan", **fields}]


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"name": "x" * 900_000}, "name"),
        ({"name": "x" * 301}, "name"),
        ({"owners": [{"name": f"o{i}", "email": "o@example.com"} for i in range(5000)]}, "owners"),
        ({"viewers": [f"role{i}" for i in range(20_000)]}, "viewers"),
        ({"viewers": ["r" * 101]}, "viewers.0"),
        ({"objective": "o" * 1001}, "objective"),
        ({"department": "d" * 101}, "department"),
        ({"unit": "u" * 51}, "unit"),
        ({"data_collection": "c" * 4001}, "data_collection"),
        ({"leading_indicators": [f"k{i}" for i in range(51)]}, "leading_indicators"),
        ({"owners": owner(name="n" * 201)}, "owners.0.name"),
        ({"owners": owner(email=f"{'a' * 1000}@example.com")}, "owners.0.email"),
        ({"owners": owner(webhook_url="https://h.example/" + "a" * 1000)}, "owners.0.webhook_url"),
        (
            {"owners": owner(slack_webhook_url="https://h.example/" + "a" * 1000)},
            "owners.0.slack_webhook_url",
        ),
        ({"owners": owner(webhook_url="javascript:alert(1)")}, "owners.0.webhook_url"),
        ({"scope": {"properties": {f"p{i}": "v" for i in range(21)}}}, "scope.properties"),
        ({"scope": {"properties": {"p" * 129: "v"}}}, "scope.properties"),
        ({"scope": {"properties": {"region": "v" * 1001}}}, "scope.properties"),
        (
            {"formula": {"count": {"type": [f"t{i}" for i in range(51)]}}},
            "formula.count.type",
        ),
        ({"retention": "999999999w"}, "retention"),
    ],
)
def test_an_oversized_field_is_refused_naming_the_kpi_and_the_field(
    overrides: dict[str, Any], field: str
) -> None:
    found = problems(**overrides)
    assert any(p.startswith(f"kpi 'signups': {field}:") for p in found), found


@pytest.mark.parametrize(
    "email",
    [
        "x@ex.com, attacker@evil.example",
        "x@ex.com;attacker@evil.example",
        "Lan <lan@example.com>",
        "lan@example.com\r\nBcc: attacker@evil.example",
        "no-at-sign",
        "lan@localhost",
    ],
)
def test_an_owner_email_must_be_exactly_one_address(email: str) -> None:
    found = problems(owners=owner(email=email))
    assert any(p.startswith("kpi 'signups': owners.0.email: ") for p in found), found
    assert "exactly one email address" in " ".join(found) or "at most" in " ".join(found)


@pytest.mark.parametrize(
    "name", ["Sign-ups\nBcc: x@evil.example", "Sign\rups", "a\x00b", "a\u2028b"]
)
def test_control_characters_in_one_line_fields_are_refused(name: str) -> None:
    for field in ("name", "department", "unit"):
        found = problems(**{field: name})
        assert any(p.startswith(f"kpi 'signups': {field}: ") for p in found), found
        assert "control character" in " ".join(found)
    found = problems(owners=owner(name=name))
    assert any(p.startswith("kpi 'signups': owners.0.name: ") for p in found), found


def test_prose_fields_keep_their_line_breaks() -> None:
    steps = "1. export trials from the backend\n2. join the CRM's subscriptions\tdaily"
    (kpi,) = Catalog.from_definitions([kpi_dict(data_collection=steps)])
    assert kpi.data_collection == steps
    assert "control character" in " ".join(problems(data_collection="steps\x1b[31m"))


def test_a_catalog_file_names_the_kpi_and_the_field() -> None:
    text = "- " + "\n  ".join(
        f"{k}: {v!r}" if isinstance(v, str) else f"{k}: {v}"
        for k, v in kpi_dict(key="churn", name="c" * 301).items()
    )
    with pytest.raises(CatalogError) as caught:
        parse_catalog(text)
    assert any(p.startswith("kpi 'churn': name: ") for p in caught.value.problems)
    assert "300" in str(caught.value)


def test_the_largest_accepted_definition_fits_alerts_columns() -> None:
    """What the catalog accepts, the value message carries and alerts can store."""
    assert len(MAX_OWNER["email"]) == 254  # the longest address RFC 5321 allows
    (kpi,) = Catalog.from_definitions(
        [kpi_dict(name="N" * 300, owners=[MAX_OWNER], leading_indicators=[])]
    )
    message = KpiValueMessage(
        kpi_key=kpi.key,
        name=kpi.name,
        value=1.0,
        window_s=86_400,
        as_of=T0,
        computed_at=T0,
        status="on_target",
        minimum=kpi.minimum,
        target=kpi.target,
        direction=kpi.direction,
        owners=list(kpi.owners),
        update_every_s=60,
    )
    decoded = KpiValueMessage.from_bytes(message.to_bytes())

    def width(column: Any) -> int:
        assert isinstance(column.type, String) and column.type.length is not None
        return int(column.type.length)

    assert len(decoded.name) <= width(kpi_latest.c.name)
    assert len(decoded.kpi_key) <= width(kpi_latest.c.kpi_key)
    (stored,) = decoded.owners
    for target in (stored.email, stored.webhook_url, stored.slack_webhook_url):
        assert target is not None and len(target) <= width(outbox.c.target)


def test_an_owner_email_is_normalised_once_valid() -> None:
    assert Owner(name="Lan", email=" lan@Example.COM ").email == "lan@example.com"
