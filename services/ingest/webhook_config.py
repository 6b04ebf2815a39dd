"""Webhook secrets parsed once at start-up (a bad SendGrid key fails start-up, not a request)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from cryptography.hazmat.primitives.asymmetric import ec
from pydantic import SecretStr

from services.ingest.domain.signatures import load_sendgrid_key, standard_webhook_key
from shared.settings import IngestSettings


@dataclass(frozen=True, slots=True)
class WebhookSecrets:
    hubspot: tuple[bytes, ...]
    sendgrid: tuple[ec.EllipticCurvePublicKey, ...]
    mailchimp: tuple[bytes, ...]
    zendesk: tuple[bytes, ...]
    #: Per source: the source is in the URL, outside what the signature covers.
    standard: dict[str, tuple[bytes, ...]]

    @classmethod
    def from_settings(cls, settings: IngestSettings) -> WebhookSecrets:
        def plain(values: Sequence[SecretStr]) -> tuple[bytes, ...]:
            return tuple(v.get_secret_value().encode() for v in values)

        return cls(
            hubspot=plain(settings.hubspot_secrets),
            sendgrid=tuple(load_sendgrid_key(k) for k in settings.sendgrid_public_keys),
            mailchimp=plain(settings.mailchimp_secrets),
            zendesk=plain(settings.zendesk_secrets),
            standard={
                source: tuple(standard_webhook_key(s.get_secret_value()) for s in secrets)
                for source, secrets in settings.standard_webhook_secrets.items()
                if secrets
            },
        )
