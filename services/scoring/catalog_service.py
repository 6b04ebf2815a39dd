"""Changing the catalog: one KPI through the API, or the KPIs one catalog file manages.

Every KPI has one owner of its definition, recorded on its row as ``managed_by``: the
path of the catalog file that manages it, or ``api``. Applying a file creates, changes
and retires only the KPIs that file manages (and adopts those nobody manages yet); an
API edit writes only its own KPI. Each write locks the rows it changes and the rows its
KPIs lean on (their leading indicators), then validates the catalog it leaves behind as
stored at that moment: concurrent writers, in this process or another instance, wait
for each other row by row and never write a catalog assembled from a stale read.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.scoring.catalog_state import CatalogState
from services.scoring.domain.catalog import (
    Catalog,
    CatalogDiff,
    KpiChange,
    KpiDefinition,
    diff_catalog,
)
from services.scoring.domain.stored import usable_definitions
from services.scoring.repository import BucketRepository, CatalogRepository, StoredKpi
from shared.db.engine import transaction
from shared.identity.domain import redact

API: str = "api"

# Changing any of these changes what a bucket means: the KPI starts afresh.
_RESETTING_FIELDS = ("formula", "scope", "window")
# A new KPI's insert loses only to a writer that created the same key meanwhile; the
# next attempt then finds the row and locks it.
_ATTEMPTS = 3

Conflicts = Literal["refuse", "skip", "adopt"]

log = logging.getLogger(__name__)


class ManagedElsewhere(Exception):
    """The KPIs are managed by another owner (a catalog file, or the API)."""

    def __init__(self, owners: dict[str, str]) -> None:
        self.owners = owners
        super().__init__(
            "; ".join(f"KPI '{key}' is managed by {_owner(by)}" for key, by in owners.items())
        )


class VersionMismatch(Exception):
    """If-Match named another version than the stored one."""

    def __init__(self, key: str, expected: Sequence[int] | None, actual: int | None) -> None:
        self.actual = actual
        if actual is None:
            message = f"KPI '{key}' does not exist"
        elif expected is None:
            message = f"KPI '{key}' exists (version {actual})"
        else:
            wanted = ", ".join(str(v) for v in expected)
            message = f"KPI '{key}' is at version {actual}, not {wanted}: read it again"
        super().__init__(message)


class UnknownKpi(KeyError):
    """No active KPI has this key."""


@dataclass(frozen=True, slots=True)
class Precondition:
    """What the caller expects stored: any of ``versions``, or (``absent``) no active KPI."""

    versions: tuple[int, ...] | None = None
    exists: bool = False
    absent: bool = False

    def check(self, key: str, row: StoredKpi | None) -> None:
        active = row is not None and not row.retired
        version = row.version if row is not None and active else None
        if self.absent and active:
            raise VersionMismatch(key, None, version)
        if (self.exists or self.versions is not None) and not active:
            raise VersionMismatch(key, self.versions, None)
        if self.versions is not None and version not in self.versions:
            raise VersionMismatch(key, self.versions, version)


@dataclass(frozen=True, slots=True)
class Written:
    """What a write did: the diff, and the KPI's new version (None for a file apply)."""

    diff: CatalogDiff
    version: int | None = None
    skipped: tuple[tuple[str, str], ...] = ()  # (key, owner) a file named but does not own


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
        # The process's own catalog, reloaded right after a change commits; other
        # processes pick the change up by polling ``stamp``.
        self._state = state

    async def load(self) -> Catalog:
        async with self._sessions() as session:
            stored = await self._repository.active(session)
        kpis, problems = usable_definitions(stored)
        for problem in problems:
            log.warning("a stored KPI definition no longer validates: left out until "
                        "replaced or retired", extra={"problem": problem})
        return Catalog.from_definitions(kpis)

    async def stamp(self) -> tuple[int, datetime | None]:
        async with self._sessions() as session:
            return await self._repository.stamp(session)

    async def stored(self, key: str) -> StoredKpi | None:
        async with self._sessions() as session:
            return await self._repository.stored(session, key)

    async def apply_file(
        self,
        catalog: Catalog,
        *,
        source: str,
        actor: str,
        dry_run: bool = False,
        conflicts: Conflicts = "refuse",
    ) -> Written:
        """Make the KPIs ``source`` manages those of ``catalog``; leave every other alone.

        A KPI of the file that another owner manages is refused (``ManagedElsewhere``,
        nothing applied), skipped (reported in ``skipped``) or adopted, per ``conflicts``.
        """
        async with transaction(self._sessions) as session:
            managed = await self._repository.managed_keys(session, source)
            leads = {lead for kpi in catalog for lead in kpi.leading_indicators}
            rows = await self._repository.lock(
                session, {*managed, *catalog.keys()}, shared=leads
            )
            foreign = {
                key: row.managed_by
                for key, row in rows.items()
                if key in catalog and row.managed_by not in (source, None)
            }
            if foreign and conflicts == "refuse":
                raise ManagedElsewhere({k: v for k, v in foreign.items() if v})
            skipped = foreign if conflicts == "skip" else {}
            owned = [
                row for row in rows.values()
                if not row.retired and row.key not in skipped
                and (row.managed_by == source or row.key in catalog)
            ]
            wanted = [kpi for kpi in catalog if kpi.key not in skipped]
            diff = diff_catalog(_unchecked(r.definition for r in owned), Catalog(tuple(wanted)))
            await self._validate(session, remove={r.key for r in owned}, add=wanted)
            if not dry_run:
                await self._write(session, diff, rows, wanted, managed_by=source, actor=actor)
        if not dry_run:
            await self._reload()
        return Written(diff, skipped=tuple((k, v) for k, v in skipped.items() if v))

    async def put(
        self,
        kpi: KpiDefinition,
        *,
        actor: str,
        expect: Precondition = Precondition(),
        take_over: bool = False,
    ) -> Written:
        """Create or replace one KPI through the API; it is then managed by the API."""
        for _ in range(_ATTEMPTS):
            written = await self._put_once(kpi, actor, expect, take_over)
            if written is not None:
                return written
        raise RuntimeError(f"KPI '{kpi.key}' kept being created concurrently: try again")

    async def _put_once(
        self, kpi: KpiDefinition, actor: str, expect: Precondition, take_over: bool
    ) -> Written | None:
        async with transaction(self._sessions) as session:
            rows = await self._repository.lock(
                session, [kpi.key], shared=set(kpi.leading_indicators) - {kpi.key}
            )
            row = rows.get(kpi.key)
            expect.check(kpi.key, row)
            _check_owner(row, take_over)
            await self._validate(session, remove={kpi.key}, add=[kpi])
            now = datetime.now(UTC)
            if row is None:
                if not await self._repository.insert(
                    session, kpi.key, _stored(kpi), managed_by=API, at=now
                ):
                    return None  # created meanwhile by another writer: lock it and retry
                version = 1
            else:
                version = await self._repository.write(
                    session, row, _stored(kpi), managed_by=API, at=now
                )
            before = () if row is None or row.retired else (row.definition,)
            diff = diff_catalog(_unchecked(before), Catalog((kpi,)))
            await self._record(session, diff, actor, now)
            if row is not None and not row.retired:
                await self._record_owner(session, row, API, actor, now)
            if row is not None and _resets(row.definition, kpi):
                await self._buckets.forget_kpi(session, kpi.key)
        await self._reload()
        return Written(diff, version)

    async def retire(
        self,
        key: str,
        *,
        actor: str,
        expect: Precondition = Precondition(),
        take_over: bool = False,
    ) -> Written:
        async with transaction(self._sessions) as session:
            row = (await self._repository.lock(session, [key])).get(key)
            if row is None or row.retired:
                raise UnknownKpi(key)
            expect.check(key, row)
            _check_owner(row, take_over)
            await self._validate(session, remove={key}, add=[])
            now = datetime.now(UTC)
            managed_by = API if take_over or row.managed_by is None else row.managed_by
            version = await self._repository.retire(session, row, now, managed_by=managed_by)
            diff = diff_catalog(_unchecked([row.definition]), Catalog(()))
            await self._record(session, diff, actor, now)
        await self._reload()
        return Written(diff, version)

    async def _validate(
        self, session: AsyncSession, *, remove: set[str], add: Sequence[KpiDefinition]
    ) -> None:
        """The catalog this write leaves behind, as stored now, must be valid as a whole."""
        active = await self._repository.active_rows(session)
        # Links as stored: a write that would leave a link dangling is refused.
        others, _ = usable_definitions(
            (row.definition for key, row in active.items() if key not in remove), whole=False
        )
        Catalog.from_definitions([*others, *add])

    async def _write(
        self,
        session: AsyncSession,
        diff: CatalogDiff,
        rows: dict[str, StoredKpi],
        wanted: Sequence[KpiDefinition],
        *,
        managed_by: str,
        actor: str,
    ) -> None:
        now = datetime.now(UTC)
        changed = {change.key for change in diff.changed}
        created = {kpi.key for kpi in diff.created}
        for kpi in wanted:
            row = rows.get(kpi.key)
            if row is None:
                await self._repository.insert(
                    session, kpi.key, _stored(kpi), managed_by=managed_by, at=now
                )
            elif kpi.key in changed | created or row.managed_by != managed_by:
                await self._repository.write(
                    session, row, _stored(kpi), managed_by=managed_by, at=now
                )
                if not row.retired:
                    await self._record_owner(session, row, managed_by, actor, now)
                if _resets(row.definition, kpi):
                    await self._buckets.forget_kpi(session, kpi.key)
        for kpi in diff.retired:
            await self._repository.retire(session, rows[kpi.key], now, managed_by=managed_by)
        await self._record(session, diff, actor, now)

    async def _record(
        self, session: AsyncSession, diff: CatalogDiff, actor: str, at: datetime
    ) -> None:
        for kpi in diff.created:
            await self._repository.record_change(
                session, kpi_key=kpi.key, action="created", changes=[], actor=actor, at=at
            )
        for change in diff.changed:
            await self._repository.record_change(
                session,
                kpi_key=change.key,
                action="changed",
                changes=_fields(change),
                actor=actor,
                at=at,
            )
        for kpi in diff.retired:
            await self._repository.record_change(
                session, kpi_key=kpi.key, action="retired", changes=[], actor=actor, at=at
            )

    async def _record_owner(
        self, session: AsyncSession, row: StoredKpi, managed_by: str, actor: str, at: datetime
    ) -> None:
        """A KPI that changes owner (taken over, adopted) says so in its history."""
        if row.managed_by is None or row.managed_by == managed_by:
            return
        await self._repository.record_change(
            session,
            kpi_key=row.key,
            action="owner",
            changes=[{"field": "managed_by", "old": row.managed_by, "new": managed_by}],
            actor=actor,
            at=at,
        )

    async def _reload(self) -> None:
        if self._state is not None:
            self._state.replace(await self.load())


def file_source(path: Path) -> str:
    """How a catalog file is recorded as the owner of its KPIs: its path as written,
    normalised (``./catalog/x.yaml`` and ``catalog/x.yaml`` are one file). Apply a file
    under the path scoring is configured with, or the two are two owners."""
    return Path(os.path.normpath(path)).as_posix()


def _check_owner(row: StoredKpi | None, take_over: bool) -> None:
    """An active KPI a catalog file manages is changed in that file, unless taken over."""
    if row is None or row.retired or take_over:
        return
    if row.managed_by is not None and row.managed_by != API:
        raise ManagedElsewhere({row.key: row.managed_by})


def _owner(managed_by: str) -> str:
    return "the API" if managed_by == API else f"the catalog file {managed_by}"


def _unchecked(definitions: Iterable[dict[str, Any]]) -> Catalog:
    """Stored definitions as a catalog, without the cross-KPI rules (a part of the whole);
    one that no longer validates is left out (see ``domain.stored``)."""
    return Catalog(tuple(usable_definitions(definitions, whole=False)[0]))


def _resets(stored: dict[str, Any], kpi: KpiDefinition) -> bool:
    new = _stored(kpi)
    return any(stored.get(name) != new.get(name) for name in _RESETTING_FIELDS)


def _fields(change: KpiChange) -> list[dict[str, Any]]:
    # Owner URLs are secrets: the history records that they changed, not them.
    return [
        {"field": f.field, "old": redact(f.old), "new": redact(f.new)} for f in change.fields
    ]


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
