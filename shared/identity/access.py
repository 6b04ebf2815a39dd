"""FastAPI dependencies: who is calling (token, session cookie, admin token) and may they.

Every refusal names its problem: 401 when no valid identity came with the request, 403
when the identity is known but not allowed (role, CSRF, a password still to change).
"""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable
from typing import Annotated, Final

from fastapi import Depends, HTTPException, Request, status
from pydantic import SecretStr

from shared.identity.domain import (
    ADMIN_TOKEN_PRINCIPAL,
    SESSION_PREFIX,
    TOKEN_PREFIX,
    KpiAccess,
    Principal,
    can_read,
)
from shared.identity.service import IdentityService

SESSION_COOKIE: Final = "kpipulse_session"
CSRF_HEADER: Final = "X-CSRF-Token"
_SAFE_METHODS: Final = frozenset({"GET", "HEAD", "OPTIONS"})
# Paths a session with a one-time password may still use: to change it, or to leave.
_PASSWORD_PATHS: Final = ("/v1/session",)

Dependency = Callable[[Request], Awaitable[Principal]]


def _unauthorized(message: str) -> HTTPException:
    return HTTPException(
        status.HTTP_401_UNAUTHORIZED, message, headers={"WWW-Authenticate": "Bearer"}
    )


def forbidden(message: str) -> HTTPException:
    return HTTPException(status.HTTP_403_FORBIDDEN, message)


class Authenticator:
    def __init__(self, identity: IdentityService, admin_token: SecretStr) -> None:
        self.identity = identity
        self._admin = admin_token.get_secret_value().encode()

    async def principal(self, request: Request) -> Principal:
        """The caller, or 401. Cookie-borne state changes must carry the CSRF token."""
        header = request.headers.get("authorization")
        if header is not None:
            return await self._bearer(header)
        cookie = request.cookies.get(SESSION_COOKIE)
        if cookie:
            return await self._session(request, cookie)
        raise _unauthorized(
            "sign in (the page) or send Authorization: Bearer <personal API token>"
        )

    async def _bearer(self, header: str) -> Principal:
        scheme, _, given = header.partition(" ")
        given = given.strip()
        if scheme.lower() != "bearer" or not given:
            raise _unauthorized("malformed Authorization header: send Bearer <token>")
        # Constant time: the comparison must not reveal how much of the token matched.
        if self._admin and hmac.compare_digest(given.encode(), self._admin):
            return ADMIN_TOKEN_PRINCIPAL
        if given.startswith(TOKEN_PREFIX):
            principal = await self.identity.by_token(given)
            if principal is not None:
                return principal
            raise _unauthorized("personal API token unknown or revoked, or its user disabled")
        raise _unauthorized("token invalid: not the admin token nor a personal API token")

    async def _session(self, request: Request, cookie: str) -> Principal:
        found = await self.identity.by_session(cookie) if cookie.startswith(
            SESSION_PREFIX
        ) else None
        if found is None:
            raise _unauthorized("session expired or signed out: sign in again")
        principal, must_change = found
        if request.method not in _SAFE_METHODS:
            sent = request.headers.get(CSRF_HEADER, "")
            if not sent:
                raise forbidden(f"CSRF token missing: send the {CSRF_HEADER} header")
            expected = principal.csrf_token or ""
            if not hmac.compare_digest(sent.encode(), expected.encode()):
                raise forbidden("CSRF token invalid or stale: reload the page")
        if must_change and not request.url.path.startswith(_PASSWORD_PATHS):
            raise forbidden(
                "change your one-time password first: POST /v1/session/password"
            )
        return principal

    async def admin(self, request: Request) -> Principal:
        principal = await self.principal(request)
        if not principal.is_admin:
            raise forbidden(f"admin role needed; {principal.subject} is {principal.role}")
        return principal

    async def visible(self, principal: Principal) -> set[str] | None:
        """Keys of the KPIs the caller may read; None means every KPI (admins)."""
        if principal.is_admin:
            return None
        access = await self.identity.kpi_access()
        return {key for key, rule in access.items() if can_read(principal, rule)}

    async def may_read(self, principal: Principal, key: str) -> bool:
        if principal.is_admin:
            return True
        rule: KpiAccess | None = (await self.identity.kpi_access([key])).get(key)
        return rule is not None and can_read(principal, rule)


def install(app: object, auth: Authenticator) -> None:
    """Make ``auth`` the app's authenticator (what ``Caller`` and ``AdminCaller`` use)."""
    app.state.authenticator = auth  # type: ignore[attr-defined]


def authenticator(request: Request) -> Authenticator:
    auth: Authenticator = request.app.state.authenticator
    return auth


async def _caller(request: Request) -> Principal:
    return await authenticator(request).principal(request)


async def _admin_caller(request: Request) -> Principal:
    return await authenticator(request).admin(request)


#: The caller of a route (401 without a valid identity).
Caller = Annotated[Principal, Depends(_caller)]
#: The caller of an admin route (403 for non-admins).
AdminCaller = Annotated[Principal, Depends(_admin_caller)]
