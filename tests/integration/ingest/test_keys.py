"""Write keys through the CLI functions and the admin API, and their effect on auth."""

from __future__ import annotations

import argparse
import asyncio
import re

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.ingest import cli
from services.ingest.keycache import KeyCache
from services.ingest.stores import WriteKeyStore
from shared.settings import Settings
from tests.conftest import ADMIN_TOKEN
from tests.integration.ingest.helpers import bearer

ADMIN = bearer(ADMIN_TOKEN)


def run_cli(argv: list[str], settings: Settings) -> int:
    parser = argparse.ArgumentParser()
    cli.register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    code: int = args.run(args, settings)
    return code


async def test_cli_create_list_revoke(
    client: httpx.AsyncClient, app: FastAPI, ingest_settings: Settings,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # The CLI runs its own event loop (asyncio.run), hence the thread.
    assert await asyncio.to_thread(
        run_cli, ["keys", "create", "--source", "crm", "--name", "HubSpot backfill"],
        ingest_settings,
    ) == 0
    out = capsys.readouterr().out
    key = re.search(r"key:\s+(kp_crm_\S+)", out)
    key_id = re.search(r"id:\s+(\S+)", out)
    assert key and key_id, out

    ok = await client.post("/v1/events", headers=bearer(key[1]), json={"type": "lead_created"})
    assert ok.status_code == 200, ok.text

    assert await asyncio.to_thread(run_cli, ["keys", "list"], ingest_settings) == 0
    listing = capsys.readouterr().out
    assert key_id[1] in listing and "HubSpot backfill" in listing
    assert key[1] not in listing  # the key itself is never shown again

    assert await asyncio.to_thread(run_cli, ["keys", "revoke", key_id[1]], ingest_settings) == 0
    assert "revoked" in capsys.readouterr().out
    assert await asyncio.to_thread(run_cli, ["keys", "revoke", "no-such-id"], ingest_settings) == 1
    # Another process revoked it: this instance notices once its cache entry expires.
    app.state.ingest.keys.clear()
    refused = await client.post("/v1/events", headers=bearer(key[1]), json={"type": "x"})
    assert refused.status_code == 401
    assert refused.json()["code"] == "revoked_key"


async def test_admin_api(client: httpx.AsyncClient) -> None:
    created = await client.post("/v1/admin/keys", headers=ADMIN,
                                json={"source": "support", "name": "Zendesk bridge"})
    assert created.status_code == 201, created.text
    record = created.json()
    assert record["key"].startswith("kp_support_")
    assert record["active"] is True

    listed = (await client.get("/v1/admin/keys", headers=ADMIN)).json()["keys"]
    mine = [k for k in listed if k["id"] == record["id"]]
    assert mine and "key" not in mine[0]

    used = await client.post("/v1/events", headers=bearer(record["key"]),
                             json={"type": "ticket_opened"})
    assert used.status_code == 200
    revoked = await client.delete(f"/v1/admin/keys/{record['id']}", headers=ADMIN)
    assert revoked.status_code == 200
    assert revoked.json()["active"] is False
    # Revoked through this instance: refused at once, not after the cache TTL.
    refused = await client.post("/v1/events", headers=bearer(record["key"]),
                                json={"type": "ticket_opened"})
    assert refused.status_code == 401
    assert "revoked" in refused.json()["detail"]

    missing = await client.delete("/v1/admin/keys/nope", headers=ADMIN)
    assert missing.status_code == 404
    invalid = await client.post("/v1/admin/keys", headers=ADMIN,
                                json={"source": "sales", "name": "x"})
    assert invalid.status_code == 422
    assert "source" in invalid.text


@pytest.mark.parametrize("headers", [{}, bearer("wrong-token"), {"Authorization": ADMIN_TOKEN}])
async def test_admin_api_needs_the_token(
    client: httpx.AsyncClient, headers: dict[str, str]
) -> None:
    assert (await client.get("/v1/admin/keys", headers=headers)).status_code == 401
    assert (await client.post("/v1/admin/keys", headers=headers,
                              json={"source": "web", "name": "x"})).status_code == 401


async def test_key_cache_ttl(sessions: async_sessionmaker[AsyncSession]) -> None:
    from datetime import UTC, datetime

    from services.ingest.keys import create_key

    now = [0.0]
    repository = WriteKeyStore(sessions)
    cache = KeyCache(repository, ttl_s=10, clock=lambda: now[0])
    record, key = await create_key(repository, source="web", name="ttl", now=datetime.now(UTC))
    assert (await cache.lookup(key)) == record
    await repository.revoke(record.id, now=datetime.now(UTC))
    now[0] = 9.9
    cached = await cache.lookup(key)
    assert cached is not None and cached.active  # within the TTL: still the cached record
    now[0] = 10.1
    fresh = await cache.lookup(key)
    assert fresh is not None and not fresh.active
    assert await cache.lookup("not a key") is None
