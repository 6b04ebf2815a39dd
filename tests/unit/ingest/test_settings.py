"""Ingest's settings: per-source webhook secrets and the bounds' defaults."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from services.ingest.webhook_config import WebhookSecrets
from shared.settings import IngestSettings, SettingsError, load_settings


def test_standard_webhook_secrets_are_per_source(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KPIPULSE_INGEST__STANDARD_WEBHOOK_SECRETS",
                       '{"crm": ["whsec_Y3Jt"], "support": ["s-one", "s-two"]}')
    ingest = load_settings().ingest
    secrets = WebhookSecrets.from_settings(ingest)
    assert secrets.standard == {"crm": (b"crm",), "support": (b"s-one", b"s-two")}


def test_one_list_for_every_source_is_refused_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("KPIPULSE_INGEST__STANDARD_WEBHOOK_SECRETS", '["whsec_Y3Jt"]')
    with pytest.raises(SettingsError, match=r"STANDARD_WEBHOOK_SECRETS.*each source"):
        load_settings()


def test_one_secret_under_two_sources_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KPIPULSE_INGEST__STANDARD_WEBHOOK_SECRETS",
                       '{"crm": ["same"], "web": ["same"]}')
    with pytest.raises(SettingsError, match="one secret serves 'crm' and 'web'"):
        load_settings()


def test_an_unknown_source_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KPIPULSE_INGEST__STANDARD_WEBHOOK_SECRETS", '{"sales": ["s"]}')
    with pytest.raises(SettingsError):
        load_settings()


def test_bounds_defaults() -> None:
    ingest = IngestSettings()
    assert ingest.max_future_skew_s == 24 * 3600
    assert ingest.earliest_event_time == datetime(2000, 1, 1, tzinfo=UTC)
    assert ingest.max_nesting_depth == 32
    assert ingest.max_dead_letter_bytes == 64 * 1024
