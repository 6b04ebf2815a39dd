"""One owner per KPI definition: a catalog file or the API; restarts never undo an edit.

Runs the scoring app on the real database: the catalog file applied at every start, the
admin API, the ``kpipulse catalog apply`` command, and concurrent writers.
"""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from services.scoring import cli
from services.scoring.catalog_service import file_source
from shared.settings import Settings
from tests.conftest import ADMIN_TOKEN
from tests.integration.scoring.conftest import CATALOG, build_app

ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
Db = tuple[AsyncEngine, async_sessionmaker[AsyncSession]]


@asynccontextmanager
async def running(settings: Settings, db: Db) -> AsyncIterator[httpx.AsyncClient]:
    """One start of the scoring app (the catalog file is applied as it starts)."""
    app = build_app(settings, *db)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://scoring") as client:
            yield client


def definition(key: str, **changes: Any) -> dict[str, Any]:
    """A valid KPI definition, the test catalog's ``complaints`` under another key."""
    [template] = [k for k in yaml.safe_load(CATALOG) if k["key"] == "complaints"]
    template["expires_on"] = template["expires_on"].isoformat()
    return {**template, "key": key, "name": f"KPI {key}", **changes}


async def kpi(client: httpx.AsyncClient, key: str) -> httpx.Response:
    return await client.get(f"/v1/kpis/{key}", headers=ADMIN)


async def test_api_edits_survive_restarts_and_file_kpis_answer_409(
    scoring_settings: Settings, scoring_db: Db
) -> None:
    path = scoring_settings.scoring.catalog_path
    assert path is not None
    async with running(scoring_settings, scoring_db) as client:
        # A KPI the file manages is changed in the file: the API names the file.
        refused = await client.put(
            "/v1/kpis/complaints", json=definition("complaints", target=3), headers=ADMIN
        )
        assert refused.status_code == 409, refused.text
        assert file_source(path) in refused.json()["detail"]
        assert "take_over=true" in refused.json()["detail"]
        gone = await client.delete("/v1/kpis/revenue", headers=ADMIN)
        assert gone.status_code == 409 and file_source(path) in gone.text

        # Taken over explicitly, it is the API's from then on.
        taken = await client.put(
            "/v1/kpis/complaints",
            params={"take_over": "true"},
            json=definition("complaints", target=3),
            headers=ADMIN,
        )
        assert taken.status_code == 200, taken.text
        created = await client.post("/v1/kpis", json=definition("api_made"), headers=ADMIN)
        assert created.status_code == 201, created.text
        assert created.json()["managed_by"] == "api"

    # The file changes too: revenue's target moves, active_users leaves it.
    edited = [k for k in yaml.safe_load(CATALOG) if k["key"] != "active_users"]
    for item in edited:
        if item["key"] == "revenue":
            item["target"] = 2000
            item["leading_indicators"] = []
    path.write_text(yaml.safe_dump(edited))

    async with running(scoring_settings, scoring_db) as client:
        complaints = (await kpi(client, "complaints")).json()
        assert complaints["definition"]["target"] == 3  # the API's edit stands
        assert complaints["managed_by"] == "api"
        assert (await kpi(client, "api_made")).status_code == 200  # not retired
        history = (await client.get("/v1/kpis/complaints/changes", headers=ADMIN)).json()["changes"]
        assert [c["action"] for c in history] == ["created", "changed", "owner"]
        assert history[2]["changes"] == [
            {"field": "managed_by", "old": file_source(path), "new": "api"}
        ]
        revenue = (await kpi(client, "revenue")).json()
        assert revenue["definition"]["target"] == 2000
        assert revenue["managed_by"] == file_source(path)
        assert (await kpi(client, "active_users")).status_code == 404  # the file retired it
        made = await client.get("/v1/kpis/api_made/changes", headers=ADMIN)
        actions = [c["action"] for c in made.json()["changes"]]
        assert actions == ["created"]


async def test_no_catalog_file_applies_nothing(scoring_settings: Settings, scoring_db: Db) -> None:
    async with running(scoring_settings, scoring_db) as client:
        assert (await kpi(client, "revenue")).status_code == 200
    no_file = scoring_settings.scoring.model_copy(update={"catalog_path": None})
    async with running(scoring_settings.model_copy(update={"scoring": no_file}), scoring_db) as c:
        # Nothing applied, nothing retired: the KPIs stay as they are.
        assert (await kpi(c, "revenue")).status_code == 200
        assert len((await c.get("/v1/kpis", headers=ADMIN)).json()["kpis"]) == 3


async def test_concurrent_creates_all_survive(scoring_settings: Settings, scoring_db: Db) -> None:
    """Ten admin PUTs at once, each creating its own KPI: all ten stay active."""
    async def create(key: str, index: int) -> httpx.Response:
        # Staggered by a few ms, so that some writers commit while others are under way
        # (what lost KPIs when each write rewrote a whole catalog read before it).
        await asyncio.sleep(0.003 * index)
        return await client.put(f"/v1/kpis/{key}", json=definition(key), headers=ADMIN)

    async with running(scoring_settings, scoring_db) as client:
        for round_ in range(3):
            keys = [f"parallel_{round_}_{i}" for i in range(10)]
            answers = await asyncio.gather(*(create(k, i) for i, k in enumerate(keys)))
            assert [a.status_code for a in answers] == [200] * 10, [a.text for a in answers]
            answer = await client.get("/v1/kpis", headers=ADMIN)
            listed = {k["key"] for k in answer.json()["kpis"]}
            assert set(keys) <= listed, sorted(set(keys) - listed)
            for key in keys:
                log = await client.get(f"/v1/kpis/{key}/changes", headers=ADMIN)
                changes = log.json()["changes"]
                assert [c["action"] for c in changes] == ["created"]


async def test_concurrent_writes_to_one_kpi_are_serialised(
    scoring_settings: Settings, scoring_db: Db
) -> None:
    """Conditional writes of one version: exactly one wins, the others get 412."""
    async with running(scoring_settings, scoring_db) as client:
        made = await client.put("/v1/kpis/shared", json=definition("shared"), headers=ADMIN)
        etag = made.headers["ETag"]
        answers = await asyncio.gather(
            *(
                client.put(
                    "/v1/kpis/shared",
                    json=definition("shared", target=t),
                    headers={**ADMIN, "If-Match": etag},
                )
                for t in range(1, 6)
            )
        )
        codes = sorted(a.status_code for a in answers)
        assert codes == [200, 412, 412, 412, 412], [a.text for a in answers]
        assert (await kpi(client, "shared")).headers["ETag"] == '"2"'


async def test_etag_and_if_match(scoring_settings: Settings, scoring_db: Db) -> None:
    async with running(scoring_settings, scoring_db) as client:
        made = await client.put("/v1/kpis/probe", json=definition("probe"), headers=ADMIN)
        assert made.status_code == 200 and made.headers["ETag"] == '"1"'
        read = await kpi(client, "probe")
        assert read.headers["ETag"] == '"1"' and read.json()["version"] == 1

        changed = await client.put(
            "/v1/kpis/probe", json=definition("probe", target=1),
            headers={**ADMIN, "If-Match": '"1"'},
        )
        assert changed.status_code == 200 and changed.headers["ETag"] == '"2"'
        stale = await client.put(
            "/v1/kpis/probe", json=definition("probe", target=0),
            headers={**ADMIN, "If-Match": '"1"'},
        )
        assert stale.status_code == 412 and "version 2" in stale.text
        assert (await kpi(client, "probe")).json()["definition"]["target"] == 1

        bad = await client.put(
            "/v1/kpis/probe", json=definition("probe"), headers={**ADMIN, "If-Match": "yes"}
        )
        assert bad.status_code == 400 and "If-Match" in bad.text
        exists = await client.put(
            "/v1/kpis/probe", json=definition("probe"), headers={**ADMIN, "If-None-Match": "*"}
        )
        assert exists.status_code == 412 and "exists" in exists.text
        missing = await client.put(
            "/v1/kpis/nobody", json=definition("nobody"), headers={**ADMIN, "If-Match": "*"}
        )
        assert missing.status_code == 412 and "does not exist" in missing.text

        stale_delete = await client.delete("/v1/kpis/probe", headers={**ADMIN, "If-Match": '"1"'})
        assert stale_delete.status_code == 412
        deleted = await client.delete("/v1/kpis/probe", headers={**ADMIN, "If-Match": '"2"'})
        assert deleted.status_code == 204
        assert (await client.delete("/v1/kpis/probe", headers=ADMIN)).status_code == 404


async def test_catalog_apply_command_refuses_kpis_managed_elsewhere(
    scoring_settings: Settings, scoring_db: Db, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = scoring_settings.scoring.catalog_path
    assert path is not None
    async with running(scoring_settings, scoring_db) as client:
        other = tmp_path / "other.yaml"
        other.write_text(yaml.safe_dump([definition("complaints", target=4)]))

        def apply(*flags: str) -> int:
            args = argparse.Namespace(file=other, dry_run=False, actor="cli", adopt=False)
            for flag in flags:
                setattr(args, flag, True)
            return cli._apply(args, scoring_settings)

        assert await asyncio.to_thread(apply) == 1
        refusal = capsys.readouterr().err
        assert f"  - complaints: managed by {file_source(path)}" in refusal
        assert "--adopt" in refusal
        assert (await kpi(client, "complaints")).json()["definition"]["target"] == 2

        assert await asyncio.to_thread(apply, "adopt") == 0
        stored = (await kpi(client, "complaints")).json()
        assert stored["managed_by"] == file_source(other)
        # The other file adopted only what it names: revenue still belongs to the first.
        assert (await kpi(client, "revenue")).json()["managed_by"] != file_source(other)
