"""``kpipulse users create|list|disable|token|revoke-token``."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from shared.identity.domain import IdentityError, Role, parse_groups
from shared.settings import Settings

T = TypeVar("T")


def _with_identity(settings: Settings, work: Callable[[Any], Awaitable[T]]) -> T:
    from shared.db.engine import create_engine, create_session_factory
    from shared.identity.service import IdentityService

    async def run() -> T:
        engine = create_engine(settings.database)
        try:
            return await work(IdentityService(create_session_factory(engine)))
        finally:
            await engine.dispose()

    return asyncio.run(run())


def users_create(args: argparse.Namespace, settings: Settings) -> int:
    try:
        groups = parse_groups(args.groups.split(",") if args.groups else [])
        made = _with_identity(
            settings, lambda identity: identity.create_user(args.email, Role(args.role), groups)
        )
    except IdentityError as exc:
        print(f"kpipulse users create: {exc}", file=sys.stderr)
        return 1
    user = made.user
    print(f"email:    {user.email}\nrole:     {user.role.value}")
    print(f"groups:   {', '.join(sorted(user.groups)) or '-'}")
    print(f"one-time password: {made.password}")
    print("Sign in on the page with it; you will be asked to choose your own.")
    print("Personal API token (shown once; send it as Authorization: Bearer …):")
    print(made.token)
    return 0


def users_list(_args: argparse.Namespace, settings: Settings) -> int:
    found = _with_identity(settings, lambda identity: identity.list_users())
    print(f"{'EMAIL':40}  {'ROLE':7}  {'STATE':8}  {'TOKENS':6}  GROUPS")
    for user, tokens in found:
        state = "active" if user.active else "disabled"
        live = sum(1 for t in tokens if t.revoked_at is None)
        groups = ",".join(sorted(user.groups)) or "-"
        print(f"{user.email:40}  {user.role.value:7}  {state:8}  {live:<6}  {groups}")
    return 0


def users_disable(args: argparse.Namespace, settings: Settings) -> int:
    try:
        user = _with_identity(settings, lambda identity: identity.disable(args.email))
    except (KeyError, IdentityError):
        print(f"no user with email '{args.email}'", file=sys.stderr)
        return 1
    print(f"disabled {user.email}: its tokens and sessions no longer work")
    return 0


def users_token(args: argparse.Namespace, settings: Settings) -> int:
    try:
        row, token = _with_identity(
            settings, lambda identity: identity.new_token(args.email, args.name)
        )
    except (KeyError, IdentityError):
        print(f"no active user with email '{args.email}'", file=sys.stderr)
        return 1
    print(f"token id: {row.id} ({row.name}); shown once:")
    print(token)
    return 0


def users_revoke(args: argparse.Namespace, settings: Settings) -> int:
    if not _with_identity(settings, lambda identity: identity.revoke_token(args.id)):
        print(f"no active token with id {args.id}", file=sys.stderr)
        return 1
    print(f"revoked token {args.id}")
    return 0


def register(sub: Any) -> None:
    users = sub.add_parser("users", help="manage the people who sign in, and their tokens")
    actions = users.add_subparsers(dest="action", required=True)
    create = actions.add_parser("create", help="create a user; prints a one-time password "
                                "and, on the last line, a personal API token")
    create.add_argument("--email", required=True)
    create.add_argument("--role", required=True, choices=[r.value for r in Role])
    create.add_argument("--groups", default="", help="comma-separated, e.g. sales,leadership")
    create.set_defaults(run=users_create)
    actions.add_parser("list", help="list users").set_defaults(run=users_list)
    disable = actions.add_parser("disable", help="disable a user (tokens and sessions too)")
    disable.add_argument("email")
    disable.set_defaults(run=users_disable)
    token = actions.add_parser("token", help="create another personal API token")
    token.add_argument("email")
    token.add_argument("--name", default="api")
    token.set_defaults(run=users_token)
    revoke = actions.add_parser("revoke-token", help="revoke a personal API token by id")
    revoke.add_argument("id", type=int)
    revoke.set_defaults(run=users_revoke)
