"""Every SQL statement about users, tokens, sessions and KPI access rules.

Repositories never commit: the caller owns the transaction.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, DateTime, String, column, delete, select, table, update
from sqlalchemy.ext.asyncio import AsyncSession

from shared.db.dialect import utc
from shared.identity.domain import KpiAccess, Role
from shared.identity.tables import user_sessions, user_tokens, users

# Scoring's applied catalog, read here only for each KPI's viewers and owners (a
# lightweight reference: the table belongs to scoring and its migrations).
_kpi_definitions = table(
    "kpi_definitions",
    column("key", String),
    column("definition", JSON),
    column("retired_at", DateTime(timezone=True)),
)


@dataclass(frozen=True, slots=True)
class UserRow:
    id: int
    email: str
    role: Role
    groups: frozenset[str]
    password_hash: str
    must_change_password: bool
    disabled_at: datetime | None
    created_at: datetime
    failed_signins: int
    locked_until: datetime | None

    @property
    def active(self) -> bool:
        return self.disabled_at is None


@dataclass(frozen=True, slots=True)
class TokenRow:
    id: int
    user_id: int
    name: str
    created_at: datetime
    revoked_at: datetime | None


def _user(row: Any) -> UserRow:
    return UserRow(
        id=row["id"],
        email=row["email"],
        role=Role(row["role"]),
        groups=frozenset(row["groups"] or ()),
        password_hash=row["password_hash"],
        must_change_password=bool(row["must_change_password"]),
        disabled_at=utc(row["disabled_at"]) if row["disabled_at"] else None,
        created_at=utc(row["created_at"]),
        failed_signins=int(row["failed_signins"] or 0),
        locked_until=utc(row["locked_until"]) if row["locked_until"] else None,
    )


def _token(row: Any) -> TokenRow:
    return TokenRow(
        id=row["id"],
        user_id=row["user_id"],
        name=row["name"],
        created_at=utc(row["created_at"]),
        revoked_at=utc(row["revoked_at"]) if row["revoked_at"] else None,
    )


class UserRepository:
    async def add(
        self,
        session: AsyncSession,
        *,
        email: str,
        role: Role,
        groups: frozenset[str],
        password_hash: str,
        now: datetime,
        must_change_password: bool = True,
    ) -> UserRow:
        result = await session.execute(
            users.insert()
            .values(
                email=email,
                role=role.value,
                groups=sorted(groups),
                password_hash=password_hash,
                must_change_password=must_change_password,
                created_at=now,
                failed_signins=0,
            )
            .returning(*users.c)
        )
        return _user(result.mappings().one())

    async def by_email(self, session: AsyncSession, email: str) -> UserRow | None:
        row = (await session.execute(select(users).where(users.c.email == email))).mappings()
        found = row.one_or_none()
        return _user(found) if found else None

    async def by_id(self, session: AsyncSession, user_id: int) -> UserRow | None:
        row = (await session.execute(select(users).where(users.c.id == user_id))).mappings()
        found = row.one_or_none()
        return _user(found) if found else None

    async def all(self, session: AsyncSession) -> list[UserRow]:
        rows = await session.execute(select(users).order_by(users.c.email))
        return [_user(r) for r in rows.mappings()]

    async def count_admins(self, session: AsyncSession) -> int:
        rows = await session.execute(
            select(users.c.id).where(users.c.role == Role.ADMIN.value)
        )
        return len(rows.all())

    async def update(self, session: AsyncSession, user_id: int, **values: Any) -> None:
        if "groups" in values:
            values["groups"] = sorted(values["groups"])
        if "role" in values:
            values["role"] = Role(values["role"]).value
        await session.execute(update(users).where(users.c.id == user_id).values(**values))


class TokenRepository:
    async def add(
        self, session: AsyncSession, *, user_id: int, token_hash: str, name: str, now: datetime
    ) -> TokenRow:
        result = await session.execute(
            user_tokens.insert()
            .values(user_id=user_id, token_hash=token_hash, name=name, created_at=now)
            .returning(*user_tokens.c)
        )
        return _token(result.mappings().one())

    async def user_of(self, session: AsyncSession, token_hash: str) -> UserRow | None:
        """The active user holding this unrevoked token."""
        row = (
            await session.execute(
                select(users)
                .join(user_tokens, user_tokens.c.user_id == users.c.id)
                .where(
                    user_tokens.c.token_hash == token_hash,
                    user_tokens.c.revoked_at.is_(None),
                    users.c.disabled_at.is_(None),
                )
            )
        ).mappings().one_or_none()
        return _user(row) if row else None

    async def of_user(self, session: AsyncSession, user_id: int) -> list[TokenRow]:
        rows = await session.execute(
            select(user_tokens).where(user_tokens.c.user_id == user_id).order_by(user_tokens.c.id)
        )
        return [_token(r) for r in rows.mappings()]

    async def revoke(self, session: AsyncSession, token_id: int, now: datetime) -> bool:
        result = await session.execute(
            update(user_tokens)
            .where(user_tokens.c.id == token_id, user_tokens.c.revoked_at.is_(None))
            .values(revoked_at=now)
        )
        return bool(getattr(result, "rowcount", 0))


class SessionRepository:
    async def add(
        self,
        session: AsyncSession,
        *,
        session_hash: str,
        user_id: int,
        csrf_token: str,
        now: datetime,
        expires_at: datetime,
    ) -> None:
        await session.execute(
            user_sessions.insert().values(
                session_hash=session_hash,
                user_id=user_id,
                csrf_token=csrf_token,
                created_at=now,
                expires_at=expires_at,
            )
        )

    async def lookup(
        self, session: AsyncSession, session_hash: str, now: datetime
    ) -> tuple[UserRow, str] | None:
        """The active user of an unexpired session, and the session's CSRF token."""
        row = (
            await session.execute(
                select(users, user_sessions.c.csrf_token, user_sessions.c.expires_at)
                .join(user_sessions, user_sessions.c.user_id == users.c.id)
                .where(
                    user_sessions.c.session_hash == session_hash,
                    users.c.disabled_at.is_(None),
                )
            )
        ).mappings().one_or_none()
        if row is None or utc(row["expires_at"]) <= now:
            return None
        return _user(row), str(row["csrf_token"])

    async def remove(self, session: AsyncSession, session_hash: str) -> None:
        await session.execute(
            delete(user_sessions).where(user_sessions.c.session_hash == session_hash)
        )

    async def remove_for_user(self, session: AsyncSession, user_id: int) -> None:
        await session.execute(delete(user_sessions).where(user_sessions.c.user_id == user_id))

    async def prune(self, session: AsyncSession, now: datetime) -> None:
        await session.execute(delete(user_sessions).where(user_sessions.c.expires_at <= now))


class KpiAccessRepository:
    """Viewers and owners of every KPI in the applied catalog (retired ones included)."""

    async def all(self, session: AsyncSession) -> dict[str, KpiAccess]:
        rows = await session.execute(
            select(_kpi_definitions.c.key, _kpi_definitions.c.definition)
        )
        return {str(key): _access(definition) for key, definition in rows.all()}

    async def of(self, session: AsyncSession, keys: Sequence[str]) -> dict[str, KpiAccess]:
        rows = await session.execute(
            select(_kpi_definitions.c.key, _kpi_definitions.c.definition).where(
                _kpi_definitions.c.key.in_(list(keys))
            )
        )
        return {str(key): _access(definition) for key, definition in rows.all()}


def _access(definition: Any) -> KpiAccess:
    data = dict(definition or {})
    return KpiAccess.of(data.get("viewers") or (), data.get("owners") or ())
