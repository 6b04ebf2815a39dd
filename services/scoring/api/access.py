"""Who may read or change which KPI, from the definitions scoring holds in memory."""

from __future__ import annotations

from collections.abc import Callable

from fastapi import HTTPException, status

from services.scoring.domain.catalog import KpiDefinition
from shared.identity.domain import (
    IdentityError,
    KpiAccess,
    Principal,
    can_edit,
    can_read,
    keep_secrets,
)


def access_of(kpi: KpiDefinition) -> KpiAccess:
    return KpiAccess.of(kpi.viewers, ({"email": owner.email} for owner in kpi.owners))


def readable(principal: Principal) -> Callable[[KpiDefinition], bool]:
    return lambda kpi: can_read(principal, access_of(kpi))


def require_read(principal: Principal, kpi: KpiDefinition) -> None:
    if not can_read(principal, access_of(kpi)):
        raise HTTPException(
            status.HTTP_403_FORBIDDEN,
            f"KPI '{kpi.key}' is not shared with you: none of your groups is among its "
            "viewers and you do not own it",
        )


def require_edit(principal: Principal, kpi: KpiDefinition, *, what: str) -> None:
    if not can_edit(principal, access_of(kpi)):
        raise HTTPException(
            status.HTTP_403_FORBIDDEN,
            f"you may not {what} KPI '{kpi.key}': admins, its owners and editors in one of "
            "its viewers groups may",
        )


def with_stored_secrets(kpi: KpiDefinition, stored: KpiDefinition | None) -> KpiDefinition:
    """The definition with redacted owner URLs put back from the stored one (write-only)."""
    owners = [o.model_dump() for o in kpi.owners]
    old = [o.model_dump() for o in stored.owners] if stored is not None else []
    try:
        restored = keep_secrets(owners, old)
    except IdentityError as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(exc)) from None
    if restored == owners:
        return kpi
    return KpiDefinition.model_validate({**kpi.model_dump(), "owners": restored})
