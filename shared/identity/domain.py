"""Who may do what: roles, principals, KPI visibility and the redaction of secrets.

Pure: no FastAPI, SQLAlchemy or I/O. A KPI's ``viewers`` are group names (departments,
roles); a user belongs to groups. A KPI is readable by admins, by its owners (matched by
email), by members of one of its ``viewers`` groups, and by every signed-in user when it
lists no ``viewers``. Editors change the KPIs they own or whose groups they belong to;
owners may change their own KPIs whatever their role; viewers only read.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Final, Literal

TOKEN_PREFIX: Final = "kpt_"  # noqa: S105 - a prefix, not a secret
SESSION_PREFIX: Final = "kps_"
#: Owner fields that are write-only secrets: never returned, never logged.
SECRET_FIELDS: Final = frozenset({"webhook_url", "slack_webhook_url"})
REDACTED: Final = "[redacted]"
# What a read shows for an owner URL: itself a valid https URL (so a definition read can
# be written back as it is) on a reserved name that never resolves, ending in a short
# fingerprint that changes when the URL does.
REDACTED_URL: Final = "https://redacted.invalid/"
_GROUP = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 _.-]{0,63}$")
_EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]{1,255}$")


class Role(StrEnum):
    ADMIN = "admin"
    EDITOR = "editor"
    VIEWER = "viewer"


class IdentityError(ValueError):
    """A request about users that cannot be carried out (the message says why)."""


Via = Literal["admin_token", "token", "session"]


@dataclass(frozen=True, slots=True)
class Principal:
    """The caller of a request, however it proved who it is."""

    subject: str  # the user's email, or "admin-token" for automation
    role: Role
    groups: frozenset[str] = frozenset()
    user_id: int | None = None
    via: Via = "token"
    csrf_token: str | None = field(default=None, repr=False)

    @property
    def is_admin(self) -> bool:
        return self.role is Role.ADMIN


ADMIN_TOKEN_PRINCIPAL: Final = Principal("admin-token", Role.ADMIN, via="admin_token")


@dataclass(frozen=True, slots=True)
class KpiAccess:
    """What decides who sees and changes one KPI."""

    viewers: frozenset[str]
    owner_emails: frozenset[str]

    @classmethod
    def of(cls, viewers: Iterable[str], owners: Iterable[Mapping[str, Any]]) -> KpiAccess:
        emails = {str(o["email"]).lower() for o in owners if o.get("email")}
        return cls(frozenset(viewers), frozenset(emails))


def can_read(principal: Principal, access: KpiAccess) -> bool:
    if principal.is_admin or principal.subject.lower() in access.owner_emails:
        return True
    return not access.viewers or bool(principal.groups & access.viewers)


def can_edit(principal: Principal, access: KpiAccess) -> bool:
    if principal.is_admin or principal.subject.lower() in access.owner_emails:
        return True
    return principal.role is Role.EDITOR and bool(principal.groups & access.viewers)


def normalise_email(email: str) -> str:
    email = email.strip().lower()
    if not _EMAIL.match(email):
        raise IdentityError(f"'{email}' is not an email address")
    return email


def parse_groups(raw: Iterable[str]) -> frozenset[str]:
    groups = {g.strip() for g in raw if g.strip()}
    bad = sorted(g for g in groups if not _GROUP.match(g))
    if bad:
        raise IdentityError(
            f"bad group name(s) {bad}: letters, digits, space, '_', '.', '-'; at most 64"
        )
    return frozenset(groups)


def new_secret(prefix: str) -> str:
    return prefix + secrets.token_urlsafe(32)


def hash_secret(value: str) -> str:
    """Tokens carry 256 random bits: a plain SHA-256 is enough to store them safely."""
    return hashlib.sha256(value.encode()).hexdigest()


def new_password() -> str:
    return secrets.token_urlsafe(15)


def fingerprint(value: str) -> str:
    """Shows that a secret changed without showing it."""
    return REDACTED_URL + hashlib.sha256(value.encode()).hexdigest()[:8]


def redact(value: Any) -> Any:
    """A JSON-like value with every owner URL replaced by its fingerprint."""
    if isinstance(value, Mapping):
        return {
            k: (fingerprint(str(v)) if k in SECRET_FIELDS and v else redact(v))
            for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return [redact(v) for v in value]
    return value


def is_redacted(value: object) -> bool:
    return isinstance(value, str) and value.startswith(REDACTED_URL)


def keep_secrets(
    new: list[dict[str, Any]], old: Iterable[Mapping[str, Any]]
) -> list[dict[str, Any]]:
    """Owners as sent, with each redacted URL put back from the stored owner it stands for.

    A client that reads a KPI and writes it back sends the fingerprints it was shown; the
    stored URL whose fingerprint matches is kept (write-only fields survive a round trip).
    """
    stored = {
        fingerprint(str(o[k])): o[k] for o in old for k in SECRET_FIELDS if o.get(k)
    }
    out = []
    for sent in new:
        owner = dict(sent)
        for name in SECRET_FIELDS:
            if is_redacted(owner.get(name)):
                if owner[name] not in stored:
                    raise IdentityError(
                        f"owner '{owner.get('name')}': {name} is redacted and matches no "
                        "stored URL: send the URL itself"
                    )
                owner[name] = stored[owner[name]]
        out.append(owner)
    return out


def mask_target(target: str, *, admin: bool) -> str:
    """A notification target as shown: URLs never in full, emails masked for non-admins."""
    if "://" in target:
        scheme, _, rest = target.partition("://")
        host = rest.split("/", 1)[0].rsplit("@", 1)[-1]
        return f"{scheme}://{host}/{REDACTED}"
    if admin:
        return target
    local, at, domain = target.partition("@")
    return f"{local[:1]}***{at}{domain}" if at else "***"
