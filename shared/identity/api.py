"""HTTP routes: sign-in for the page (session cookie + CSRF token), and user admin."""

from __future__ import annotations

import time
from collections import deque
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Path, Request, Response, status
from pydantic import BaseModel, ConfigDict, Field

from shared.identity.access import SESSION_COOKIE, AdminCaller, Authenticator, Caller
from shared.identity.domain import IdentityError, Principal, Role, parse_groups
from shared.identity.repository import TokenRow, UserRow
from shared.identity.service import SESSION_LIFETIME, SignInRefused

NO_NUL = r"^[^\x00]*$"


class SignInIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    email: str = Field(min_length=3, max_length=320, pattern=NO_NUL)
    password: str = Field(min_length=1, max_length=1000)


class PasswordIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    current_password: str = Field(min_length=1, max_length=1000)
    new_password: str = Field(min_length=1, max_length=1000)


class UserIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    email: str = Field(min_length=3, max_length=320, pattern=NO_NUL)
    role: Role
    groups: list[Annotated[str, Field(max_length=64, pattern=NO_NUL)]] = Field(
        default_factory=list, max_length=100
    )


class TokenIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(default="api", min_length=1, max_length=100, pattern=NO_NUL)


class FailureThrottle:
    """Failed sign-ins per client address in a sliding window (this process's view).

    The per-account lock in the database is the real brake on guessing one password;
    this one slows a client spraying many accounts.
    """

    def __init__(self, limit: int = 20, window_s: float = 300.0) -> None:
        self._limit = limit
        self._window = window_s
        self._failures: dict[str, deque[float]] = {}

    def retry_after(self, client: str) -> int | None:
        now = time.monotonic()
        seen = self._failures.get(client)
        while seen and seen[0] <= now - self._window:
            seen.popleft()
        if seen is not None and not seen:
            del self._failures[client]
            return None
        if seen and len(seen) >= self._limit:
            return int(seen[0] + self._window - now) + 1
        return None

    def failed(self, client: str) -> None:
        if len(self._failures) > 100_000:  # bounded memory under a spray of addresses
            self._failures.clear()
        self._failures.setdefault(client, deque()).append(time.monotonic())


def _me(principal: Principal, *, must_change: bool = False) -> dict[str, Any]:
    return {
        "signed_in": True,
        "email": principal.subject,
        "role": principal.role.value,
        "groups": sorted(principal.groups),
        "csrf_token": principal.csrf_token,
        "must_change_password": must_change,
    }


def _user(user: UserRow, tokens: list[TokenRow] | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {
        "email": user.email,
        "role": user.role.value,
        "groups": sorted(user.groups),
        "active": user.active,
        "created_at": user.created_at.isoformat(),
    }
    if tokens is not None:
        out["tokens"] = [
            {
                "id": t.id,
                "name": t.name,
                "created_at": t.created_at.isoformat(),
                "revoked": t.revoked_at is not None,
            }
            for t in tokens
        ]
    return out


def session_router(
    auth: Authenticator, *, secure_cookie: bool, failures_per_address: int = 20
) -> APIRouter:
    router = APIRouter(prefix="/v1/session", tags=["session"])
    identity = auth.identity
    throttle = FailureThrottle(limit=failures_per_address)

    @router.post("", summary="Sign in: sets the session cookie; answers the CSRF token")
    async def sign_in(body: SignInIn, request: Request, response: Response) -> dict[str, Any]:
        # The body must be JSON (anything else is a 422): a form on another site cannot
        # send that without the browser asking this origin first, so nobody can sign a
        # visitor in to an account of theirs (login CSRF).
        client = request.client.host if request.client else "?"
        wait = throttle.retry_after(client)
        if wait is not None:
            raise HTTPException(
                status.HTTP_429_TOO_MANY_REQUESTS,
                f"too many failed sign-ins from this address: try again in {wait} s",
                headers={"Retry-After": str(wait)},
            )
        try:
            done = await identity.sign_in(body.email, body.password)
        except SignInRefused as exc:
            throttle.failed(client)
            if exc.retry_after_s is not None:
                raise HTTPException(
                    status.HTTP_429_TOO_MANY_REQUESTS,
                    str(exc),
                    headers={"Retry-After": str(exc.retry_after_s)},
                ) from None
            raise HTTPException(status.HTTP_401_UNAUTHORIZED, str(exc)) from None
        response.set_cookie(
            SESSION_COOKIE,
            done.session_token,
            max_age=int(SESSION_LIFETIME.total_seconds()),
            httponly=True,
            samesite="strict",
            secure=secure_cookie or request.url.scheme == "https",
            path="/",
        )
        return _me(done.principal, must_change=done.must_change_password)

    @router.get("", summary="Who is signed in (and the CSRF token for the page)")
    async def who(request: Request) -> dict[str, Any]:
        if "authorization" not in request.headers and SESSION_COOKIE not in request.cookies:
            # Nobody claims to be anybody: not a refusal, the page shows its sign-in form.
            return {"signed_in": False}
        principal = await auth.principal(request)
        must_change = False
        cookie = request.cookies.get(SESSION_COOKIE)
        if principal.via == "session" and cookie:
            found = await identity.by_session(cookie)
            must_change = bool(found and found[1])
        return _me(principal, must_change=must_change)

    @router.delete("", status_code=204, summary="Sign out (needs the CSRF token)")
    async def sign_out(request: Request, _principal: Caller) -> Response:
        cookie = request.cookies.get(SESSION_COOKIE, "")
        await identity.sign_out(cookie)
        response = Response(status_code=204)
        response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="strict")
        return response

    @router.post("/password", status_code=204, summary="Replace your password")
    async def change_password(body: PasswordIn, principal: Caller) -> Response:
        if principal.user_id is None:
            raise HTTPException(403, "the admin token has no password")
        try:
            await identity.change_password(
                principal.user_id, body.current_password, body.new_password
            )
        except SignInRefused as exc:
            raise HTTPException(403, str(exc)) from None
        except IdentityError as exc:
            raise HTTPException(422, str(exc)) from None
        return Response(status_code=204)

    return router


async def _admin(_caller: AdminCaller) -> None:
    return None


def users_router(auth: Authenticator) -> APIRouter:
    router = APIRouter(prefix="/v1/admin", tags=["users"], dependencies=[Depends(_admin)])
    identity = auth.identity

    def unknown(email: str) -> HTTPException:
        return HTTPException(404, f"no user with email '{email}'")

    @router.post("/users", status_code=201, summary="Create a user (one-time password + token)")
    async def create_user(body: UserIn) -> dict[str, Any]:
        try:
            made = await identity.create_user(body.email, body.role, parse_groups(body.groups))
        except IdentityError as exc:
            code = 409 if "exists" in str(exc) else 422
            raise HTTPException(code, str(exc)) from None
        return {**_user(made.user), "password": made.password, "token": made.token}

    @router.get("/users", summary="Users with their roles, groups and tokens")
    async def list_users() -> list[dict[str, Any]]:
        return [_user(u, tokens) for u, tokens in await identity.list_users()]

    @router.delete(
        "/users/{email}", summary="Disable (kept for the record): tokens and sessions stop at once"
    )
    async def disable(email: str) -> dict[str, Any]:
        try:
            user = await identity.disable(email)
        except (KeyError, IdentityError):
            raise unknown(email) from None
        return {**_user(user), "active": False}

    @router.post("/users/{email}/tokens", status_code=201, summary="A new personal token")
    async def new_token(email: str, body: TokenIn) -> dict[str, Any]:
        try:
            row, token = await identity.new_token(email, body.name)
        except (KeyError, IdentityError):
            raise unknown(email) from None
        return {"id": row.id, "name": row.name, "token": token}

    @router.delete("/tokens/{token_id}", status_code=204, summary="Revoke a personal token")
    async def revoke(token_id: Annotated[int, Path(ge=1, le=2**31 - 1)]) -> Response:
        if not await identity.revoke_token(token_id):
            raise HTTPException(404, f"no active token with id {token_id}")
        return Response(status_code=204)

    return router
