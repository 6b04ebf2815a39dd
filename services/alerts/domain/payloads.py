"""Machine-readable notices: an Alertmanager-like webhook body and a Slack message.

The webhook is signed with HMAC-SHA256 over the exact bytes sent, so a receiver can
reject forged or altered notices (header ``X-KPIPulse-Signature: sha256=<hex>``).
"""

from __future__ import annotations

import hashlib
import hmac
from datetime import datetime
from typing import Any

from services.alerts.domain.facts import AlertFacts
from services.alerts.domain.render import OPEN_SCORECARD, SCORECARD_LABEL, fact_lines, summary
from shared.i18n import ENGLISH, Translator

SIGNATURE_HEADER = "X-KPIPulse-Signature"
# Alertmanager uses the zero time for "not ended yet".
_ZERO_TIME = "0001-01-01T00:00:00Z"


def _ts(moment: datetime | None) -> str:
    return _ZERO_TIME if moment is None else moment.isoformat().replace("+00:00", "Z")


def fingerprint(dedupe_key: str) -> str:
    return hashlib.sha256(dedupe_key.encode()).hexdigest()[:16]


def webhook_body(
    facts: AlertFacts, *, receiver: str, tr: Translator = ENGLISH
) -> dict[str, Any]:
    labels = {
        "alertname": f"KpiPulse_{facts.condition.value}",
        "kpi": facts.kpi_key,
        "severity": facts.severity,
        "condition": facts.condition.value,
    }
    description = "; ".join(f"{label}: {value}" for label, value in fact_lines(facts, tr))
    alert = {
        "status": facts.status,
        "labels": labels,
        "annotations": {"summary": summary(facts, tr), "description": description},
        "startsAt": _ts(facts.started_at),
        "endsAt": _ts(facts.ended_at),
        "generatorURL": facts.scorecard_url,
        "fingerprint": fingerprint(facts.dedupe_key),
        "value": facts.value,
    }
    group_key = f'{{}}:{{kpi="{facts.kpi_key}", alertname="{labels["alertname"]}"}}'
    return {
        "version": "4",
        "groupKey": group_key,
        "truncatedAlerts": 0,
        "status": facts.status,
        "receiver": receiver,
        "groupLabels": {"kpi": facts.kpi_key, "alertname": labels["alertname"]},
        "commonLabels": labels,
        "commonAnnotations": alert["annotations"],
        "externalURL": facts.scorecard_url,
        "kind": facts.kind,
        "alerts": [alert],
    }


def slack_body(facts: AlertFacts, tr: Translator = ENGLISH) -> dict[str, Any]:
    headline = summary(facts, tr)
    link_label = tr.gettext(SCORECARD_LABEL)
    fields = [
        {"type": "mrkdwn", "text": f"*{label}*\n{value}"}
        for label, value in fact_lines(facts, tr)
        if label != link_label
    ]
    return {
        "text": headline,  # the fallback shown in notifications
        "blocks": [
            {"type": "header", "text": {"type": "plain_text", "text": headline[:150]}},
            # Slack allows at most 10 fields per section.
            {"type": "section", "fields": fields[:10]},
            {
                "type": "section",
                "text": {
                    "type": "mrkdwn",
                    "text": f"<{facts.scorecard_url}|{tr.gettext(OPEN_SCORECARD)}>",
                },
            },
        ],
    }


def sign(body: bytes, secret: str) -> str:
    digest = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


def verify(body: bytes, secret: str, header: str | None) -> bool:
    """Constant-time check of a signature header (what a receiver does)."""
    if header is None:
        return False
    return hmac.compare_digest(sign(body, secret), header)
