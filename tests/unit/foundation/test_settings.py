"""Settings: environment overrides, nesting, and errors that name the variable."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from shared.settings import SettingsError, load_settings


def test_nested_environment_variables_override_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KPIPULSE_KAFKA__PARTITIONS", "12")
    monkeypatch.setenv("KPIPULSE_INGEST__HTTP__PORT", "9100")
    settings = load_settings()
    assert settings.kafka.partitions == 12
    assert settings.ingest.http.port == 9100
    assert settings.kafka.topics().events == "kpipulse.events.v1"


def test_bad_setting_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KPIPULSE_KAFKA__PARTITIONS", "many")
    with pytest.raises(SettingsError, match="KPIPULSE_KAFKA__PARTITIONS"):
        load_settings()


def test_database_url_must_use_an_async_driver(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KPIPULSE_DATABASE__URL", "postgresql://x@localhost/db")
    with pytest.raises(SettingsError, match=r"KPIPULSE_DATABASE__URL: .*async driver"):
        load_settings()


def test_command_fails_at_start_naming_the_setting() -> None:
    env = {**os.environ, "KPIPULSE_ALERTS__SMTP__PORT": "0"}
    result = subprocess.run(
        [sys.executable, "-m", "services.cli", "migrate"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert "KPIPULSE_ALERTS__SMTP__PORT" in result.stderr
