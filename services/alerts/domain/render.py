"""Human-readable notices: the email subject, text and HTML body.

Every string goes through the reader's ``Translator`` (shared/i18n): the company's
language, or the owner's own; numbers and times in that locale's format.
"""

from __future__ import annotations

from dataclasses import dataclass
from html import escape

from services.alerts.domain.conditions import Condition
from services.alerts.domain.facts import AlertFacts
from shared.contracts.text import fold_line
from shared.i18n import ENGLISH, N_, Translator


@dataclass(frozen=True, slots=True)
class EmailContent:
    subject: str
    text: str
    html: str


_WHAT: dict[Condition, str] = {
    Condition.BELOW_MINIMUM: N_("is worse than its minimum"),
    Condition.EARLY_WARNING: N_("has a leading indicator in breach"),
    Condition.STALE: N_("has no fresh value"),
    Condition.EXPIRING_SOON: N_("expires soon and needs a review"),
    Condition.EXPIRED: N_("has expired and needs a review or renewal"),
    Condition.VALUE_DUE: N_("has no value for its last period: please enter it"),
}
CONDITION_LABELS: dict[Condition, str] = {
    Condition.BELOW_MINIMUM: N_("below minimum"),
    Condition.EARLY_WARNING: N_("early warning"),
    Condition.STALE: N_("stale data"),
    Condition.EXPIRING_SOON: N_("expiring soon"),
    Condition.EXPIRED: N_("expired"),
    Condition.VALUE_DUE: N_("value due"),
}
_SEVERITY = {"critical": N_("critical"), "warning": N_("warning"), "info": N_("info")}
_DIRECTION = {
    "higher_is_better": N_("higher is better"),
    "lower_is_better": N_("lower is better"),
    "target_band": N_("within a band"),
}
_PREFIX = {"firing": N_("[FIRING]"), "repeat": N_("[STILL FIRING]"), "resolved": N_("[RESOLVED]")}
_ALERT_PREFIX = N_("[ALERT]")
SCORECARD_LABEL = N_("Scorecard")
OPEN_SCORECARD = N_("Open the scorecard")


def fmt(value: float | None, tr: Translator = ENGLISH) -> str:
    return tr.number(value)


def summary(facts: AlertFacts, tr: Translator = ENGLISH) -> str:
    """One line, used as email subject, webhook summary and Slack headline."""
    what = tr.gettext(_WHAT[facts.condition])
    if facts.kind == "resolved":
        what = tr.gettext(
            "is back to normal ({condition} cleared)",
            condition=tr.gettext(CONDITION_LABELS[facts.condition]),
        )
    prefix = tr.gettext(_PREFIX.get(facts.kind, _ALERT_PREFIX))
    # The name is validated as one line where KPIs are defined, but a subject with a
    # line break is refused by every mail library: fold it here too, whatever the name's
    # origin, so that one bad name never stops a KPI's notices.
    return f"{prefix} {fold_line(facts.kpi_name)} {what}"


def fact_lines(facts: AlertFacts, tr: Translator = ENGLISH) -> list[tuple[str, str]]:
    """The label/value pairs every channel shows."""
    _ = tr.gettext
    direction = _(_DIRECTION.get(facts.direction, facts.direction))
    severity = _(_SEVERITY.get(facts.severity, facts.severity))
    lines = [
        (_("KPI"), f"{facts.kpi_name} ({facts.kpi_key})"),
        (_("Condition"), f"{_(CONDITION_LABELS[facts.condition])} ({severity})"),
        (_("Value"), fmt(facts.value, tr)),
        (_("Minimum"), f"{fmt(facts.minimum, tr)} ({direction})"),
        (_("Target"), fmt(facts.target, tr)),
        (_("Since"), tr.datetime(facts.started_at)),
    ]
    if facts.ended_at is not None:
        lines.append((_("Resolved at"), tr.datetime(facts.ended_at)))
    if facts.condition is Condition.VALUE_DUE:
        # The episode is the period's start in the catalog's zone: its date is the day
        # the owner enters the value under.
        period = facts.dedupe_key.rpartition(f":{Condition.VALUE_DUE.value}:")[2]
        lines.append((_("Period without a value"), _("starting {day}", day=period[:10])))
    if facts.trend:
        lines.append((_("Recent trend"), " → ".join(fmt(p.value, tr) for p in facts.trend)))
    if facts.expires_on is not None:
        lines.append((_("Expires on"), tr.date(facts.expires_on)))
    if facts.last_value_at is not None:
        lines.append((_("Last fresh value"), tr.datetime(facts.last_value_at)))
    if facts.leading_in_breach:
        lines.append((_("Leading indicators in breach"), ", ".join(facts.leading_in_breach)))
    lines.append((_("Owner"), ", ".join(facts.owners) or _("nobody (default route)")))
    lines.append((_(SCORECARD_LABEL), facts.scorecard_url))
    return lines


def render_email(facts: AlertFacts, tr: Translator = ENGLISH) -> EmailContent:
    subject = summary(facts, tr)
    lines = fact_lines(facts, tr)
    width = max(len(label) for label, _ in lines)
    text = "\n".join(
        [subject, "", *(f"{label.ljust(width)}  {value}" for label, value in lines), ""]
    )
    link_label = tr.gettext(SCORECARD_LABEL)
    rows = "".join(
        f"<tr><th align='left' style='padding-right:12px'>{escape(label)}</th>"
        f"<td>{_cell(label == link_label, value)}</td></tr>"
        for label, value in lines
    )
    html = (
        f"<!doctype html><html lang='{tr.locale}'><body style='font-family:sans-serif'>"
        f"<h2>{escape(subject)}</h2><table>{rows}</table>"
        f"<p><a href='{escape(facts.scorecard_url, quote=True)}'>"
        f"{escape(tr.gettext(OPEN_SCORECARD))}</a></p>"
        "</body></html>"
    )
    return EmailContent(subject=subject, text=text, html=html)


def _cell(is_link: bool, value: str) -> str:
    if is_link:
        return f"<a href='{escape(value, quote=True)}'>{escape(value)}</a>"
    return escape(value)
