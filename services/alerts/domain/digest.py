"""The weekly digest: what a department or an owner reads at the start of the week.

Pure: the week in the company's time zone, who reads which digest, its content (the
week's scores, breaches, KPIs expiring soon, what moved most) and its rendering for each
channel, in the reader's language.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, tzinfo
from html import escape
from typing import Any

from services.alerts.domain.routing import Route, routes_for
from shared.i18n import N_, Translator

WEEK = timedelta(days=7)
MOVED_MOST = 5
_STATUS = {
    "breach": N_("Breach"),
    "below_target": N_("Below target"),
    "on_target": N_("On target"),
    "no_data": N_("No data"),
}


@dataclass(frozen=True, slots=True)
class Period:
    """A week, Monday to Monday, in the company's time zone."""

    start: date
    start_at: datetime
    end_at: datetime

    @property
    def last_day(self) -> date:
        return self.start + timedelta(days=6)


def period_starting(start: date, tz: tzinfo) -> Period:
    begin = datetime.combine(start, time(0), tz)
    end = datetime.combine(start + WEEK, time(0), tz)
    return Period(start, begin, end)


def due_period(now: datetime, tz: tzinfo, send_hour: int) -> Period:
    """The latest finished week whose digest is due: sent from Monday ``send_hour`` local."""
    local = now.astimezone(tz)
    monday = local.date() - timedelta(days=local.weekday())
    if local < datetime.combine(monday, time(send_hour), tz):
        monday -= WEEK
    return period_starting(monday - WEEK, tz)


@dataclass(frozen=True, slots=True)
class DigestOwner:
    name: str
    email: str | None = None
    webhook_url: str | None = None
    slack_webhook_url: str | None = None

    @property
    def ident(self) -> str:
        return self.email or self.name


@dataclass(frozen=True, slots=True)
class DigestKpi:
    key: str
    name: str
    department: str | None
    unit: str | None
    value: float | None
    status: str
    score: float | None
    expires_on: date | None
    owners: tuple[DigestOwner, ...] = ()


@dataclass(frozen=True, slots=True)
class Breach:
    kpi_key: str
    started_at: datetime
    resolved_at: datetime | None


@dataclass(frozen=True, slots=True)
class Move:
    kpi: DigestKpi
    before: float
    after: float

    @property
    def change(self) -> float:
        return self.after - self.before

    @property
    def relative(self) -> float | None:
        return None if self.before == 0 else self.change / abs(self.before)


@dataclass(frozen=True, slots=True)
class Digest:
    period: Period
    scope: str  # "department" | "owner"
    scope_id: str
    title: str
    kpis: tuple[DigestKpi, ...]
    breaches: tuple[tuple[DigestKpi, Breach], ...]
    expiring: tuple[DigestKpi, ...]
    moved: tuple[Move, ...]
    routes: tuple[Route, ...] = field(default=())


def moves(kpis: Iterable[DigestKpi], before: Mapping[str, float | None]) -> list[Move]:
    """KPIs ranked by how far they moved since last week's digest, relative first."""
    found = []
    for kpi in kpis:
        old = before.get(kpi.key)
        if old is None or kpi.value is None or old == kpi.value:
            continue
        found.append(Move(kpi, old, kpi.value))
    return sorted(
        found, key=lambda m: (abs(m.relative) if m.relative is not None else float("inf")),
        reverse=True,
    )[:MOVED_MOST]


def build(
    period: Period,
    scope: str,
    scope_id: str,
    title: str,
    kpis: Sequence[DigestKpi],
    *,
    breaches: Sequence[Breach],
    before: Mapping[str, float | None],
    expiry_warning_days: int,
    routes: Sequence[Route] = (),
) -> Digest:
    by_key = {kpi.key: kpi for kpi in kpis}
    horizon = period.last_day + timedelta(days=expiry_warning_days + 7)
    return Digest(
        period=period,
        scope=scope,
        scope_id=scope_id,
        title=title,
        # Worst first: what needs attention leads.
        kpis=tuple(sorted(kpis, key=lambda k: (k.score is None, k.score or 0.0, k.name))),
        breaches=tuple((by_key[b.kpi_key], b) for b in breaches if b.kpi_key in by_key),
        expiring=tuple(
            sorted(
                (k for k in kpis if k.expires_on is not None and k.expires_on <= horizon),
                key=lambda k: (k.expires_on or date.max, k.name),
            )
        ),
        moved=tuple(moves(kpis, before)),
        routes=tuple(routes),
    )


def digests_for(
    period: Period,
    kpis: Sequence[DigestKpi],
    *,
    breaches: Sequence[Breach],
    before: Mapping[str, float | None],
    expiry_warning_days: int,
    department_emails: Mapping[str, Sequence[str]],
    default_email: str | None,
) -> list[Digest]:
    """One digest per department (to its configured readers) and one per owner."""
    common: dict[str, Any] = {
        "breaches": breaches, "before": before, "expiry_warning_days": expiry_warning_days,
    }
    result = []
    departments = sorted({k.department for k in kpis if k.department})
    for department in departments:
        emails = department_emails.get(department) or ([default_email] if default_email else [])
        routes = sorted({Route("email", e) for e in emails})
        members = [k for k in kpis if k.department == department]
        if routes:
            result.append(
                build(period, "department", department, department, members,
                      routes=routes, **common)
            )
    owners: dict[str, DigestOwner] = {}
    for kpi in kpis:
        for owner in kpi.owners:
            owners.setdefault(owner.ident, owner)
    for ident, owner in sorted(owners.items()):
        routes = routes_for([owner], None)
        members = [k for k in kpis if any(o.ident == ident for o in k.owners)]
        if routes:
            result.append(
                build(period, "owner", ident, owner.name, members, routes=routes, **common)
            )
    return result


# ------------------------------------------------------------------------------ rendering


def value_text(value: float | None, unit: str | None, tr: Translator) -> str:
    if value is None:
        return tr.gettext("no data")
    if unit and len(unit) == 3 and unit.isalpha() and unit.isupper():
        return tr.currency(value, unit)
    if unit in ("ratio", "percent"):
        return tr.percent(value)
    return f"{tr.number(value)} {unit}" if unit and unit != "count" else tr.number(value)


def subject(digest: Digest, tr: Translator) -> str:
    return tr.gettext(
        "[KPI Pulse] Weekly digest: {title}, {start} to {end}",
        title=digest.title,
        start=tr.date(digest.period.start),
        end=tr.date(digest.period.last_day),
    )


def sections(digest: Digest, tr: Translator) -> list[tuple[str, list[str]]]:
    """Headed lists of lines: the body every channel shows."""
    _ = tr.gettext
    scores = [
        _("{name}: {value} · {status} · score {score}",
          name=k.name, value=value_text(k.value, k.unit, tr),
          status=_(_STATUS.get(k.status, k.status)),
          score="—" if k.score is None else tr.number(round(k.score)))
        if k.value is not None
        # Without a value there is no score either: the status says it all.
        else f"{k.name}: {_(_STATUS.get(k.status, k.status))}"
        for k in digest.kpis
    ]
    breaches = [
        _("{name}: below its minimum since {since}", name=k.name, since=tr.datetime(b.started_at))
        + ("" if b.resolved_at is None
           else " · " + _("back to normal {at}", at=tr.datetime(b.resolved_at)))
        for k, b in digest.breaches
    ]
    expiring = [
        _("{name}: expires on {day}", name=k.name, day=tr.date(k.expires_on))
        for k in digest.expiring
        if k.expires_on is not None
    ]
    moved = [
        # Names, numbers and an arrow: nothing to translate.
        f"{m.kpi.name}: {value_text(m.before, m.kpi.unit, tr)} → "
        f"{value_text(m.after, m.kpi.unit, tr)}"
        + ("" if m.relative is None
           else f" ({'+' if m.relative > 0 else ''}{tr.percent(m.relative)})")
        for m in digest.moved
    ]
    return [
        (_("Scores this week"), scores or [_("No KPI yet.")]),
        (_("Breaches"), breaches or [_("No breach this week.")]),
        (_("Expiring soon"), expiring or [_("Nothing expires soon.")]),
        (_("What moved most"), moved or [_("No change to compare with last week yet.")]),
    ]


def render_payload(digest: Digest, route: Route, tr: Translator, link: str) -> dict[str, Any]:
    """The outbox payload for one route: the same shape the alert channels send."""
    title = subject(digest, tr)
    parts = sections(digest, tr)
    dedupe = f"digest:{digest.period.start.isoformat()}:{digest.scope}:{digest.scope_id}"
    if route.channel == "email":
        text = "\n".join(
            [title, "", *(f"{head}\n" + "\n".join(f"  • {line}" for line in lines) + "\n"
                          for head, lines in parts), link, ""]
        )
        html = (
            f"<!doctype html><html lang='{tr.locale}'><body style='font-family:sans-serif'>"
            f"<h2>{escape(title)}</h2>"
            + "".join(
                f"<h3>{escape(head)}</h3><ul>"
                + "".join(f"<li>{escape(line)}</li>" for line in lines) + "</ul>"
                for head, lines in parts
            )
            + f"<p><a href='{escape(link, quote=True)}'>{escape(tr.gettext(OPEN))}</a></p>"
            "</body></html>"
        )
        return {"subject": title, "text": text, "html": html, "dedupe_key": dedupe}
    if route.channel == "slack":
        blocks: list[dict[str, Any]] = [
            {"type": "header", "text": {"type": "plain_text", "text": title[:150]}}
        ]
        for head, lines in parts:
            body = f"*{head}*\n" + "\n".join(f"• {line}" for line in lines)
            blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": body[:2900]}})
        return {"body": {"text": title, "blocks": blocks}}
    return {
        "body": {
            "kind": "digest",
            "period_start": digest.period.start.isoformat(),
            "scope": digest.scope,
            "scope_id": digest.scope_id,
            "summary": title,
            "sections": [{"title": head, "lines": lines} for head, lines in parts],
            "link": link,
        }
    }


OPEN = N_("Open the scorecard")
