"""What goes into each outbox row: the channel's payload, rendered at transition time.

Rendering when the transition happens (not when the worker sends) freezes the facts the
owner is told about, and keeps the worker free of any domain knowledge.
"""

from __future__ import annotations

from typing import Any

from services.alerts.domain.facts import AlertFacts
from services.alerts.domain.payloads import slack_body, webhook_body
from services.alerts.domain.render import render_email
from services.alerts.domain.routing import UNDELIVERABLE, Route
from shared.i18n import ENGLISH, Translator


def payload_for(facts: AlertFacts, route: Route, tr: Translator = ENGLISH) -> dict[str, Any]:
    # An undeliverable notice keeps what it would have said, for the history.
    if route.channel in ("email", UNDELIVERABLE):
        email = render_email(facts, tr)
        return {
            "subject": email.subject,
            "text": email.text,
            "html": email.html,
            "dedupe_key": facts.dedupe_key,
        }
    if route.channel == "webhook":
        return {"body": webhook_body(facts, receiver=route.target, tr=tr)}
    if route.channel == "slack":
        return {"body": slack_body(facts, tr)}
    raise ValueError(f"unknown channel {route.channel!r}")
