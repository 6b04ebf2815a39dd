"""Email over SMTP with aiosmtplib: implicit TLS or STARTTLS and auth as configured."""

from __future__ import annotations

from email.message import EmailMessage
from email.utils import make_msgid
from typing import Any

import aiosmtplib

from services.alerts.channels.base import DeliveryError
from services.alerts.domain.retry import smtp_code_retryable
from shared.contracts.text import fold_line, one_address
from shared.settings import SmtpSettings


def build_message(sender: str, target: str, payload: dict[str, Any]) -> EmailMessage:
    """The mail to ``target``; DeliveryError (final) when it is not exactly one address.

    Rows written before owner addresses were validated may hold anything: a list of
    addresses would mail every one of them, a line break in the subject makes the
    header unencodable. The address is refused, the subject folded onto one line.
    """
    try:
        recipient = one_address(target)
    except ValueError as exc:
        raise DeliveryError(f"bad recipient {target[:100]!r}: {exc}", retryable=False) from None
    message = EmailMessage()
    message["From"] = sender
    message["To"] = recipient
    message["Subject"] = fold_line(str(payload["subject"]))
    message["Message-ID"] = make_msgid(domain=sender.rpartition("@")[2] or "kpipulse")
    # Lets a receiver (or a test) tie the mail to its outbox row / episode.
    message["X-KPIPulse-Dedupe-Key"] = str(payload.get("dedupe_key", ""))
    message.set_content(str(payload["text"]))
    message.add_alternative(str(payload["html"]), subtype="html")
    return message


class SmtpSender:
    def __init__(self, settings: SmtpSettings) -> None:
        self._settings = settings

    async def send(self, target: str, payload: dict[str, Any]) -> None:
        cfg = self._settings
        message = build_message(cfg.sender, target, payload)
        try:
            await aiosmtplib.send(
                message,
                # Never the recipients parsed out of the headers: only the one checked.
                recipients=[str(message["To"])],
                hostname=cfg.host,
                port=cfg.port,
                username=cfg.username,
                password=cfg.password.get_secret_value() if cfg.password else None,
                use_tls=cfg.use_tls,
                # False, not None: never upgrade opportunistically unless configured.
                start_tls=cfg.start_tls,
                timeout=cfg.timeout_s,
            )
        except aiosmtplib.SMTPRecipientsRefused as exc:
            codes = [r.code for r in exc.recipients]
            raise DeliveryError(
                f"recipient refused: {exc}", retryable=all(smtp_code_retryable(c) for c in codes)
            ) from exc
        except aiosmtplib.SMTPResponseException as exc:
            raise DeliveryError(
                f"smtp {exc.code}: {exc.message}", retryable=smtp_code_retryable(exc.code)
            ) from exc
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
            # Connection refused, timeouts, disconnects: the server may be back soon.
            raise DeliveryError(f"smtp unreachable: {exc!r}", retryable=True) from exc

    async def close(self) -> None:
        return None
