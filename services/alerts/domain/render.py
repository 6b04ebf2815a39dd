"""Human-readable notices: the email subject, text and HTML body."""

from __future__ import annotations

from dataclasses import dataclass
from html import escape

from services.alerts.domain.conditions import Condition
from services.alerts.domain.facts import AlertFacts
from shared.contracts.text import fold_line


@dataclass(frozen=True, slots=True)
class EmailContent:
    subject: str
    text: str
    html: str


_WHAT: dict[Condition, str] = {
    Condition.BELOW_MINIMUM: "is worse than its minimum",
    Condition.EARLY_WARNING: "has a leading indicator in breach",
    Condition.STALE: "has no fresh value",
    Condition.EXPIRING_SOON: "expires soon and needs a review",
    Condition.EXPIRED: "has expired and needs a review or renewal",
}


def fmt(value: float | None) -> str:
    if value is None:
        return "no data"
    return f"{value:.6g}"


def summary(facts: AlertFacts) -> str:
    """One line, used as email subject, webhook summary and Slack headline."""
    prefix = {"firing": "[FIRING]", "repeat": "[STILL FIRING]", "resolved": "[RESOLVED]"}
    what = _WHAT[facts.condition]
    if facts.kind == "resolved":
        what = f"is back to normal ({facts.condition.value} cleared)"
    # The name is validated as one line where KPIs are defined, but a subject with a
    # line break is refused by every mail library: fold it here too, whatever the name's
    # origin, so that one bad name never stops a KPI's notices.
    return f"{prefix.get(facts.kind, '[ALERT]')} {fold_line(facts.kpi_name)} {what}"


def fact_lines(facts: AlertFacts) -> list[tuple[str, str]]:
    """The label/value pairs every channel shows."""
    direction = facts.direction.replace("_", " ")
    lines = [
        ("KPI", f"{facts.kpi_name} ({facts.kpi_key})"),
        ("Condition", f"{facts.condition.value} ({facts.severity})"),
        ("Value", fmt(facts.value)),
        ("Minimum", f"{fmt(facts.minimum)} ({direction})"),
        ("Target", fmt(facts.target)),
        ("Since", facts.started_at.isoformat(timespec="seconds")),
    ]
    if facts.ended_at is not None:
        lines.append(("Resolved at", facts.ended_at.isoformat(timespec="seconds")))
    if facts.trend:
        lines.append(("Recent trend", " → ".join(fmt(p.value) for p in facts.trend)))
    if facts.expires_on is not None:
        lines.append(("Expires on", facts.expires_on.isoformat()))
    if facts.last_value_at is not None:
        lines.append(("Last fresh value", facts.last_value_at.isoformat(timespec="seconds")))
    if facts.leading_in_breach:
        lines.append(("Leading indicators in breach", ", ".join(facts.leading_in_breach)))
    lines.append(("Owner", ", ".join(facts.owners) or "nobody (default route)"))
    lines.append(("Scorecard", facts.scorecard_url))
    return lines


def render_email(facts: AlertFacts) -> EmailContent:
    subject = summary(facts)
    lines = fact_lines(facts)
    width = max(len(label) for label, _ in lines)
    text = "\n".join(
        [subject, "", *(f"{label.ljust(width)}  {value}" for label, value in lines), ""]
    )
    rows = "".join(
        f"<tr><th align='left' style='padding-right:12px'>{escape(label)}</th>"
        f"<td>{_cell(label, value)}</td></tr>"
        for label, value in lines
    )
    html = (
        "<!doctype html><html><body style='font-family:sans-serif'>"
        f"<h2>{escape(subject)}</h2><table>{rows}</table>"
        f"<p><a href='{escape(facts.scorecard_url, quote=True)}'>Open the scorecard</a></p>"
        "</body></html>"
    )
    return EmailContent(subject=subject, text=text, html=html)


def _cell(label: str, value: str) -> str:
    if label == "Scorecard":
        return f"<a href='{escape(value, quote=True)}'>{escape(value)}</a>"
    return escape(value)
