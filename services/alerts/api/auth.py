"""Admin token check: ``Authorization: Bearer <token>``, compared in constant time."""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable

from fastapi import Header, HTTPException, status
from pydantic import SecretStr

_CHALLENGE = {"WWW-Authenticate": "Bearer"}


def admin_guard(token: SecretStr) -> Callable[[str | None], Awaitable[None]]:
    expected = token.get_secret_value().encode()

    async def require_admin(authorization: str | None = Header(default=None)) -> None:
        if not expected:
            # An unset token must not mean "anyone may change things".
            raise HTTPException(
                status.HTTP_401_UNAUTHORIZED,
                "changes are disabled: no admin token is configured (KPIPULSE_ADMIN_TOKEN)",
                headers=_CHALLENGE,
            )
        if authorization is None:
            raise HTTPException(
                status.HTTP_401_UNAUTHORIZED,
                "missing Authorization header: expected 'Bearer <admin token>'",
                headers=_CHALLENGE,
            )
        scheme, _, given = authorization.partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), expected):
            raise HTTPException(
                status.HTTP_401_UNAUTHORIZED, "invalid admin token", headers=_CHALLENGE
            )

    return require_admin
