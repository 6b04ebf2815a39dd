"""The admin token check every service's admin endpoints share."""

from __future__ import annotations

import hmac
from collections.abc import Callable

from fastapi import HTTPException, Request, status
from pydantic import SecretStr

AdminGuard = Callable[[Request], None]


def admin_guard(token: SecretStr) -> AdminGuard:
    """A dependency refusing requests without ``Authorization: Bearer <admin token>``."""
    expected = token.get_secret_value().encode()

    def require_admin(request: Request) -> None:
        if not expected:
            raise HTTPException(
                status.HTTP_401_UNAUTHORIZED,
                "admin API disabled: set KPIPULSE_ADMIN_TOKEN",
                headers={"WWW-Authenticate": "Bearer"},
            )
        header = request.headers.get("authorization", "")
        scheme, _, given = header.partition(" ")
        if scheme.lower() != "bearer" or not given:
            raise HTTPException(
                status.HTTP_401_UNAUTHORIZED,
                "admin token missing: send Authorization: Bearer <token>",
                headers={"WWW-Authenticate": "Bearer"},
            )
        # Constant time: the comparison must not reveal how much of the token matched.
        if not hmac.compare_digest(given.strip().encode(), expected):
            raise HTTPException(
                status.HTTP_401_UNAUTHORIZED,
                "admin token invalid",
                headers={"WWW-Authenticate": "Bearer"},
            )

    return require_admin
