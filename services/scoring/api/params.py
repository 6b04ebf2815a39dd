"""Path parameters shared by scoring's read and admin routes."""

from __future__ import annotations

from typing import Annotated

from fastapi import Path

from shared.contracts.kpi_values import KPI_KEY_PATTERN

# A key no KPI can have is refused before it reaches a query (a NUL in it would fail in
# PostgreSQL as a 500; a megabyte of it would be echoed back in the 404).
Key = Annotated[str, Path(pattern=KPI_KEY_PATTERN, description="a KPI key (snake_case)")]
