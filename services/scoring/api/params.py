"""Path parameters shared by scoring's read and admin routes."""

from __future__ import annotations

import re
from typing import Annotated

from fastapi import Depends, HTTPException, Path, status

from shared.contracts.kpi_values import KPI_KEY_PATTERN

_KEY = re.compile(KPI_KEY_PATTERN)


def _kpi_key(
    key: Annotated[str, Path(description="a KPI key (snake_case, at most 64 characters)")],
) -> str:
    """A key no KPI can have is answered 404 before it reaches a query (a NUL in it would
    fail in PostgreSQL; a megabyte of it would be echoed back), naming the rule, not the
    key."""
    if _KEY.fullmatch(key) is None:
        raise HTTPException(
            status.HTTP_404_NOT_FOUND,
            f"unknown KPI: no KPI has this key (KPI keys match {KPI_KEY_PATTERN}; "
            f"{len(key)} characters given)",
        )
    return key


Key = Annotated[str, Depends(_kpi_key)]
