"""Applying a catalog: validate, diff against what is stored, write it with its history.

Used by ``kpipulse catalog apply``, by start-up, and by the admin API (which edits one
KPI by applying the whole catalog with that KPI replaced, so cross-KPI rules such as
unknown leading indicators are always checked).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.scoring.catalog_state import CatalogState
from services.scoring.domain.catalog import Catalog, CatalogDiff, KpiDefinition, diff_catalog
from services.scoring.repository import BucketRepository, CatalogRepository
from shared.db.engine import transaction
from shared.identity.domain import redact

# Changing any of these changes what a bucket means: the KPI starts afresh.
_RESETTING_FIELDS = ("formula", "scope", "window")


class CatalogService:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        repository: CatalogRepository,
        buckets: BucketRepository,
        state: CatalogState | None = None,
    ) -> None:
        self._sessions = sessions
        self._repository = repository
        self._buckets = buckets
        # The process's own catalog, swapped right after a change commits; other
        # processes pick the change up by polling ``stamp``.
        self._state = state

    async def load(self) -> Catalog:
        async with self._sessions() as session:
            return Catalog.from_definitions(await self._repository.active(session))

    async def stamp(self) -> tuple[int, datetime | None]:
        async with self._sessions() as session:
            return await self._repository.stamp(session)

    async def apply(
        self, catalog: Catalog, *, actor: str, dry_run: bool = False, retire_missing: bool = True
    ) -> CatalogDiff:
        """Make ``catalog`` the stored catalog (KPIs absent from it are retired)."""
        async with transaction(self._sessions) as session:
            current = Catalog.from_definitions(await self._repository.active(session))
            if not retire_missing:
                kept = [k for k in current if k.key not in catalog]
                catalog = Catalog.from_definitions([*kept, *catalog])
            diff = diff_catalog(current, catalog)
            if not dry_run:
                await self._write(session, diff, catalog, actor)
        if not dry_run and self._state is not None:
            self._state.replace(catalog)
        return diff

    async def put(self, kpi: KpiDefinition, *, actor: str) -> CatalogDiff:
        """Create or replace one KPI, validated together with the rest of the catalog."""
        current = await self.load()
        others = [k for k in current if k.key != kpi.key]
        return await self.apply(Catalog.from_definitions([*others, kpi]), actor=actor)

    async def retire(self, key: str, *, actor: str) -> CatalogDiff:
        current = await self.load()
        remaining = Catalog.from_definitions([k for k in current if k.key != key])
        return await self.apply(remaining, actor=actor)

    async def _write(
        self, session: AsyncSession, diff: CatalogDiff, catalog: Catalog, actor: str
    ) -> None:
        now = datetime.now(UTC)
        for kpi in diff.created:
            await self._repository.upsert_definition(session, kpi.key, _stored(kpi), now)
            await self._repository.record_change(
                session, kpi_key=kpi.key, action="created", changes=[], actor=actor, at=now
            )
        for change in diff.changed:
            await self._repository.upsert_definition(
                session, change.key, _stored(catalog[change.key]), now
            )
            # Owner URLs are secrets: the history records that they changed, not them.
            fields = [
                {"field": f.field, "old": redact(f.old), "new": redact(f.new)}
                for f in change.fields
            ]
            await self._repository.record_change(
                session, kpi_key=change.key, action="changed", changes=fields, actor=actor, at=now
            )
            if any(f.field.split(".")[0] in _RESETTING_FIELDS for f in change.fields):
                await self._buckets.forget_kpi(session, change.key)
        for kpi in diff.retired:
            await self._repository.retire(session, kpi.key, now)
            await self._repository.record_change(
                session, kpi_key=kpi.key, action="retired", changes=[], actor=actor, at=now
            )


def _stored(kpi: KpiDefinition) -> dict[str, Any]:
    return kpi.model_dump(mode="json", exclude_none=True)


def describe_diff(diff: CatalogDiff) -> list[str]:
    """Human-readable lines for the CLI and the API."""
    lines = [f"create {kpi.key}" for kpi in diff.created]
    for change in diff.changed:
        lines.append(f"change {change.key}")
        lines += [
            f"    {f.field}: {redact(f.old)!r} -> {redact(f.new)!r}" for f in change.fields
        ]
    lines += [f"retire {kpi.key}" for kpi in diff.retired]
    return lines or ["no changes"]
