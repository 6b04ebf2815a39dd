"""The catalog a scoring process folds and evaluates with, swapped atomically on change."""

from __future__ import annotations

from dataclasses import dataclass
from zoneinfo import ZoneInfo

from services.scoring.domain.catalog import Catalog
from services.scoring.domain.fold import Folder


@dataclass(frozen=True, slots=True)
class _Compiled:
    catalog: Catalog
    folder: Folder


class CatalogState:
    """Holds the catalog and its compiled folder; readers always see a matching pair."""

    def __init__(self, catalog: Catalog, tz: ZoneInfo) -> None:
        self.tz = tz
        self._current = _Compiled(catalog, Folder(catalog, tz))

    @property
    def catalog(self) -> Catalog:
        return self._current.catalog

    @property
    def folder(self) -> Folder:
        return self._current.folder

    def replace(self, catalog: Catalog) -> None:
        self._current = _Compiled(catalog, Folder(catalog, self.tz))
