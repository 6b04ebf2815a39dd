"""Users, tokens, sessions and sign-in throttling on PostgreSQL (the session's database)."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from shared.identity.api import FailureThrottle
from shared.identity.domain import Role, hash_secret
from shared.identity.service import FREE_FAILURES, IdentityService, SignInRefused
from shared.identity.tables import user_sessions, user_tokens, users


def email() -> str:
    return f"u-{uuid.uuid4().hex[:8]}@example.com"


async def test_only_hashes_are_stored_and_tokens_identify_their_user(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    identity = IdentityService(sessions)
    made = await identity.create_user(email(), Role.EDITOR, frozenset({"finance"}))
    async with sessions() as session:
        stored = (await session.execute(select(users).where(users.c.id == made.user.id))).one()
        hashes = (await session.execute(select(user_tokens.c.token_hash))).scalars().all()
    assert made.password not in str(stored) and stored.password_hash.startswith("$argon2id$")
    assert hash_secret(made.token) in hashes and made.token not in hashes
    caller = await identity.by_token(made.token)
    assert caller is not None and caller.role is Role.EDITOR and caller.groups == {"finance"}
    (token,) = [t for _, ts in await identity.list_users() for t in ts if t.user_id == made.user.id]
    assert await identity.revoke_token(token.id)
    assert await identity.by_token(made.token) is None


async def test_a_one_time_password_signs_in_once_changed_it_is_gone(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    identity = IdentityService(sessions)
    made = await identity.create_user(email(), Role.VIEWER, frozenset())
    done = await identity.sign_in(made.user.email, made.password)
    assert done.must_change_password
    async with sessions() as session:
        cookies = (await session.execute(select(user_sessions.c.session_hash))).scalars().all()
    assert done.session_token not in cookies and hash_secret(done.session_token) in cookies
    await identity.change_password(made.user.id, made.password, "my-own-password-123")
    with pytest.raises(SignInRefused, match="wrong email or password"):
        await identity.sign_in(made.user.email, made.password)
    again = await identity.sign_in(made.user.email, "my-own-password-123")
    assert not again.must_change_password
    await identity.sign_out(again.session_token)
    assert await identity.by_session(again.session_token) is None


async def test_failed_sign_ins_lock_the_account_for_a_while(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    identity = IdentityService(sessions)
    made = await identity.create_user(email(), Role.VIEWER, frozenset())
    for _ in range(FREE_FAILURES):
        with pytest.raises(SignInRefused) as wrong:
            await identity.sign_in(made.user.email, "guess")
    assert wrong.value.retry_after_s is None
    # Locked now: even the right password waits, and the answer says how long.
    with pytest.raises(SignInRefused, match="too many failed sign-ins") as locked:
        await identity.sign_in(made.user.email, made.password)
    assert locked.value.retry_after_s is not None and locked.value.retry_after_s >= 1


async def test_a_disabled_user_loses_tokens_and_sessions(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    identity = IdentityService(sessions)
    made = await identity.create_user(email(), Role.VIEWER, frozenset())
    signed = await identity.sign_in(made.user.email, made.password)
    await identity.disable(made.user.email)
    assert await identity.by_token(made.token) is None
    assert await identity.by_session(signed.session_token) is None
    with pytest.raises(SignInRefused):
        await identity.sign_in(made.user.email, made.password)


def test_a_client_spraying_wrong_passwords_is_slowed() -> None:
    throttle = FailureThrottle(limit=3, window_s=60)
    for _ in range(3):
        assert throttle.retry_after("10.0.0.1") is None
        throttle.failed("10.0.0.1")
    wait = throttle.retry_after("10.0.0.1")
    assert wait is not None and 1 <= wait <= 61
    assert throttle.retry_after("10.0.0.2") is None
