"""Channel adapters against real receivers: SMTP (aiosmtpd) and local HTTP servers."""

from __future__ import annotations

import orjson
import pytest

from services.alerts.channels.base import DeliveryError
from services.alerts.channels.guarded import guarded_client
from services.alerts.channels.http import HttpPoster, SlackSender, WebhookSender
from services.alerts.channels.smtp import SmtpSender
from services.alerts.domain.payloads import SIGNATURE_HEADER, sign, verify
from shared.settings import SmtpSettings
from tests.integration.alerts.factories import unique
from tests.integration.alerts.receivers import HttpReceiver, SmtpServer
from tests.support.processes import free_port


def local_poster(timeout_s: float = 5) -> HttpPoster:
    """Plain http to this machine, as the local receivers need (allow-listed)."""
    return HttpPoster(
        guarded_client(timeout_s, allowed_hosts=["127.0.0.1"]),
        allow_http=True,
        max_response_bytes=64 * 1024,
    )


EMAIL = {
    "subject": "[FIRING] Churn rate is worse than its minimum",
    "text": "Value  0.07\nMinimum 0.05\n",
    "html": "<p>Value <b>0.07</b></p>",
    "dedupe_key": "churn:below_minimum:2026-01-01T00:00:00+00:00",
}


async def test_smtp_sender_delivers_text_and_html(smtp: SmtpServer) -> None:
    to = f"{unique('owner')}@example.com"
    sender = SmtpSender(SmtpSettings(port=smtp.port, sender="alerts@kpipulse.test"))
    await sender.send(to, EMAIL)
    (mail,) = await smtp.wait_for(to, 1)
    assert mail.subject == EMAIL["subject"]
    assert mail.message["From"] == "alerts@kpipulse.test"
    assert mail.message["X-KPIPulse-Dedupe-Key"] == EMAIL["dedupe_key"]
    assert "Minimum 0.05" in mail.part("text/plain")
    assert "<b>0.07</b>" in mail.part("text/html")


async def test_smtp_down_is_retryable() -> None:
    sender = SmtpSender(SmtpSettings(port=free_port(), timeout_s=2))
    with pytest.raises(DeliveryError) as caught:
        await sender.send("x@example.com", EMAIL)
    assert caught.value.retryable


async def test_webhook_is_signed_over_the_exact_body(receiver: HttpReceiver) -> None:
    path = f"/{unique('hook')}"
    sender = WebhookSender(local_poster(), "top-secret")
    body = {"version": "4", "status": "firing", "alerts": [{"labels": {"kpi": "churn"}}]}
    await sender.send(receiver.url + path, {"body": body})
    (request,) = receiver.on_path(path)
    signature = request.headers[SIGNATURE_HEADER.lower()]
    assert verify(request.body, "top-secret", signature)
    assert signature == sign(orjson.dumps(body), "top-secret")
    assert not verify(request.body, "wrong-secret", signature)
    assert orjson.loads(request.body) == body
    await sender.close()


@pytest.mark.parametrize(
    ("status", "retryable"), [(500, True), (503, True), (429, True), (400, False), (404, False)]
)
async def test_webhook_errors_are_classified(
    receiver: HttpReceiver, status: int, retryable: bool
) -> None:
    receiver.replies.append(status)
    sender = WebhookSender(local_poster(), "s")
    with pytest.raises(DeliveryError) as caught:
        await sender.send(f"{receiver.url}/{unique('err')}", {"body": {}})
    assert caught.value.retryable is retryable
    assert str(status) in caught.value.reason
    await sender.close()


async def test_webhook_timeouts_and_refusals_are_retryable() -> None:
    sender = WebhookSender(local_poster(1), "s")
    with pytest.raises(DeliveryError) as caught:
        await sender.send(f"http://127.0.0.1:{free_port()}/x", {"body": {}})
    assert caught.value.retryable
    await sender.close()


async def test_slack_sender_posts_the_message(receiver: HttpReceiver) -> None:
    path = f"/{unique('slack')}"
    sender = SlackSender(local_poster())
    message = {"text": "[FIRING] Churn", "blocks": [{"type": "header"}]}
    await sender.send(receiver.url + path, {"body": message})
    (request,) = receiver.on_path(path)
    assert orjson.loads(request.body) == message
    assert request.headers["content-type"] == "application/json"
    await sender.close()
