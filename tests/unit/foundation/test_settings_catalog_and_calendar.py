"""Settings of the catalog file and the calendar: empty means no file; one time zone."""

from __future__ import annotations

from pathlib import Path

import pytest

from shared.settings import SettingsError, load_settings


def test_empty_catalog_path_means_no_file(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KPIPULSE_SCORING__CATALOG_PATH", "")
    assert load_settings().scoring.catalog_path is None


def test_catalog_path_is_kept_as_written(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KPIPULSE_SCORING__CATALOG_PATH", "catalog/mine.yaml")
    assert load_settings().scoring.catalog_path == Path("catalog/mine.yaml")


def test_one_time_zone_for_every_service(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KPIPULSE_TIME_ZONE", "Asia/Ho_Chi_Minh")
    assert str(load_settings().tz) == "Asia/Ho_Chi_Minh"


def test_unknown_time_zone_is_refused_by_name(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KPIPULSE_TIME_ZONE", "Asia/Saigon_City")
    with pytest.raises(SettingsError, match=r"KPIPULSE_TIME_ZONE: .*unknown time zone"):
        load_settings()


def test_the_old_scoring_time_zone_names_its_successor(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KPIPULSE_SCORING__TIME_ZONE", "Asia/Ho_Chi_Minh")
    with pytest.raises(SettingsError, match=r"KPIPULSE_SCORING__TIME_ZONE: .*KPIPULSE_TIME_ZONE"):
        load_settings()
