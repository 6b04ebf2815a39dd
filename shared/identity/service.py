"""Use cases over the identity repositories: users, tokens, sign-in, sessions, callers."""

from __future__ import annotations

import asyncio
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Final

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from shared.db.engine import transaction
from shared.identity.domain import (
    SESSION_PREFIX,
    TOKEN_PREFIX,
    IdentityError,
    KpiAccess,
    Principal,
    Role,
    hash_secret,
    new_password,
    new_secret,
    normalise_email,
)
from shared.identity.passwords import MIN_LENGTH, hash_password, verify_password
from shared.identity.repository import (
    KpiAccessRepository,
    SessionRepository,
    TokenRepository,
    TokenRow,
    UserRepository,
    UserRow,
)

SESSION_LIFETIME: Final = timedelta(hours=12)
# After this many consecutive failures an account refuses sign-in for a while, doubling
# with each further failure up to the cap: guessing stays slow, a typo costs nothing.
FREE_FAILURES: Final = 5
MAX_LOCK: Final = timedelta(minutes=15)


class SignInRefused(Exception):
    """Wrong email or password, or a locked account (``retry_after_s`` set)."""

    def __init__(self, message: str, retry_after_s: int | None = None) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


@dataclass(frozen=True, slots=True)
class NewUser:
    user: UserRow
    password: str  # the one-time password, shown once
    token: str  # the first personal API token, shown once


@dataclass(frozen=True, slots=True)
class SignedIn:
    principal: Principal
    session_token: str  # the cookie's value
    must_change_password: bool


def principal_of(user: UserRow, *, via: str, csrf_token: str | None = None) -> Principal:
    return Principal(
        subject=user.email,
        role=user.role,
        groups=user.groups,
        user_id=user.id,
        via="session" if via == "session" else "token",
        csrf_token=csrf_token,
    )


def utcnow() -> datetime:
    return datetime.now(UTC)


class IdentityService:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions
        self.users = UserRepository()
        self.tokens = TokenRepository()
        self.page_sessions = SessionRepository()
        self.kpis = KpiAccessRepository()

    # -- users -------------------------------------------------------------------------

    async def create_user(
        self,
        email: str,
        role: Role,
        groups: frozenset[str],
        *,
        password: str | None = None,
    ) -> NewUser:
        """A user with ``password`` (kept: the caller chose it) or a one-time one."""
        email = normalise_email(email)
        password_given = password
        password = password or new_password()
        hashed = await asyncio.to_thread(hash_password, password)
        token = new_secret(TOKEN_PREFIX)
        now = utcnow()
        try:
            async with transaction(self._sessions) as session:
                user = await self.users.add(
                    session,
                    email=email,
                    role=role,
                    groups=groups,
                    password_hash=hashed,
                    now=now,
                    must_change_password=password_given is None,
                )
                await self.tokens.add(
                    session, user_id=user.id, token_hash=hash_secret(token), name="first", now=now
                )
        except IntegrityError:
            raise IdentityError(f"a user with email '{email}' exists") from None
        return NewUser(user, password, token)

    async def list_users(self) -> list[tuple[UserRow, list[TokenRow]]]:
        async with self._sessions() as session:
            found = await self.users.all(session)
            return [(u, await self.tokens.of_user(session, u.id)) for u in found]

    async def get(self, email: str) -> UserRow:
        async with self._sessions() as session:
            user = await self.users.by_email(session, normalise_email(email))
        if user is None:
            raise KeyError(email)
        return user

    async def disable(self, email: str) -> UserRow:
        """Disabled users' tokens and sessions stop working at once."""
        async with transaction(self._sessions) as session:
            user = await self.users.by_email(session, normalise_email(email))
            if user is None:
                raise KeyError(email)
            await self.users.update(session, user.id, disabled_at=utcnow())
            await self.page_sessions.remove_for_user(session, user.id)
        return user

    async def new_token(self, email: str, name: str) -> tuple[TokenRow, str]:
        token = new_secret(TOKEN_PREFIX)
        async with transaction(self._sessions) as session:
            user = await self.users.by_email(session, normalise_email(email))
            if user is None or not user.active:
                raise KeyError(email)
            row = await self.tokens.add(
                session, user_id=user.id, token_hash=hash_secret(token), name=name, now=utcnow()
            )
        return row, token

    async def revoke_token(self, token_id: int) -> bool:
        async with transaction(self._sessions) as session:
            return await self.tokens.revoke(session, token_id, utcnow())

    async def ensure_admin(self, email: str, password: str) -> NewUser | None:
        """Create a first admin when there is none (``make run``); None if one exists."""
        async with self._sessions() as session:
            if await self.users.count_admins(session):
                return None
        return await self.create_user(email, Role.ADMIN, frozenset(), password=password)

    # -- callers -----------------------------------------------------------------------

    async def by_token(self, token: str) -> Principal | None:
        async with self._sessions() as session:
            user = await self.tokens.user_of(session, hash_secret(token))
        return principal_of(user, via="token") if user else None

    async def by_session(self, cookie: str) -> tuple[Principal, bool] | None:
        """The session's principal and whether it must still change its password."""
        async with self._sessions() as session:
            found = await self.page_sessions.lookup(session, hash_secret(cookie), utcnow())
        if found is None:
            return None
        user, csrf = found
        return principal_of(user, via="session", csrf_token=csrf), user.must_change_password

    async def kpi_access(self, keys: list[str] | None = None) -> dict[str, KpiAccess]:
        async with self._sessions() as session:
            if keys is None:
                return await self.kpis.all(session)
            return await self.kpis.of(session, keys)

    # -- sign-in -----------------------------------------------------------------------

    async def sign_in(self, email: str, password: str) -> SignedIn:
        now = utcnow()
        try:
            email = normalise_email(email)
        except IdentityError:
            email = ""
        async with self._sessions() as session:
            user = await self.users.by_email(session, email) if email else None
        if user is not None and user.locked_until is not None and user.locked_until > now:
            wait = int((user.locked_until - now).total_seconds()) + 1
            raise SignInRefused(
                f"too many failed sign-ins for this account: try again in {wait} s", wait
            )
        stored = user.password_hash if user is not None and user.active else None
        if not await asyncio.to_thread(verify_password, stored, password):
            if user is not None:
                await self._failed(user, now)
            raise SignInRefused("wrong email or password")
        assert user is not None
        cookie = new_secret(SESSION_PREFIX)
        csrf = secrets.token_urlsafe(32)
        async with transaction(self._sessions) as session:
            await self.users.update(session, user.id, failed_signins=0, locked_until=None)
            await self.page_sessions.prune(session, now)
            await self.page_sessions.add(
                session,
                session_hash=hash_secret(cookie),
                user_id=user.id,
                csrf_token=csrf,
                now=now,
                expires_at=now + SESSION_LIFETIME,
            )
        principal = principal_of(user, via="session", csrf_token=csrf)
        return SignedIn(principal, cookie, user.must_change_password)

    async def _failed(self, user: UserRow, now: datetime) -> None:
        failures = user.failed_signins + 1
        locked_until = None
        if failures >= FREE_FAILURES:
            seconds = min(MAX_LOCK.total_seconds(), 2 ** (failures - FREE_FAILURES))
            locked_until = now + timedelta(seconds=seconds)
        async with transaction(self._sessions) as session:
            await self.users.update(
                session, user.id, failed_signins=failures, locked_until=locked_until
            )

    async def sign_out(self, cookie: str) -> None:
        async with transaction(self._sessions) as session:
            await self.page_sessions.remove(session, hash_secret(cookie))

    async def change_password(self, user_id: int, current: str, new: str) -> None:
        if len(new) < MIN_LENGTH:
            raise IdentityError(f"the new password needs at least {MIN_LENGTH} characters")
        if new == current:
            raise IdentityError("the new password must differ from the current one")
        async with self._sessions() as session:
            user = await self.users.by_id(session, user_id)
        if user is None or not await asyncio.to_thread(
            verify_password, user.password_hash, current
        ):
            raise SignInRefused("the current password is wrong")
        hashed = await asyncio.to_thread(hash_password, new)
        async with transaction(self._sessions) as session:
            await self.users.update(
                session, user_id, password_hash=hashed, must_change_password=False
            )
