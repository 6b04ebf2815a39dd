"""Write-key management shared by the CLI and the admin API."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from services.ingest.domain.writekeys import generate, hash_key
from services.ingest.repository import WriteKey
from services.ingest.stores import WriteKeyStore


async def create_key(
    repository: WriteKeyStore,
    *,
    source: str,
    name: str,
    now: datetime,
    allowed_origins: tuple[str, ...] = (),
) -> tuple[WriteKey, str]:
    """Create a key; the plain key is returned here once and never stored.

    ``allowed_origins`` must already be normalised (domain.origins.normalize_origins).
    """
    key = generate(source)
    record = await repository.create(
        source=source, name=name, key_hash=hash_key(key), now=now, allowed_origins=allowed_origins
    )
    return record, key


def describe(record: WriteKey) -> dict[str, Any]:
    return {
        "id": record.id,
        "source": record.source,
        "name": record.name,
        "created_at": record.created_at.isoformat(),
        "revoked_at": record.revoked_at.isoformat() if record.revoked_at else None,
        "active": record.active,
        "allowed_origins": list(record.allowed_origins),
    }
