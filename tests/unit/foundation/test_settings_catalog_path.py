"""The catalog file setting: an empty value means no file, not the working directory."""

from __future__ import annotations

from pathlib import Path

import pytest

from shared.settings import load_settings


def test_empty_catalog_path_means_no_file(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KPIPULSE_SCORING__CATALOG_PATH", "")
    assert load_settings().scoring.catalog_path is None


def test_catalog_path_is_kept_as_written(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KPIPULSE_SCORING__CATALOG_PATH", "catalog/mine.yaml")
    assert load_settings().scoring.catalog_path == Path("catalog/mine.yaml")
