"""Applies lifecycle steps to the database and writes their notices to the outbox.

Shared by the consumer (value-driven conditions) and the scheduler (time-driven ones).
Runs inside the caller's transaction, so a transition and its outbox rows commit
together: there is no moment where one exists without the other.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Any

from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from services.alerts.domain.acklinks import sign as sign_ack
from services.alerts.domain.acklinks import with_ack_link
from services.alerts.domain.conditions import ONE_SHOT, SEVERITY, Condition, dedupe_key, open_key
from services.alerts.domain.facts import AlertFacts
from services.alerts.domain.lifecycle import OpenAlert, State, step
from services.alerts.domain.notices import payload_for
from services.alerts.domain.routing import Route, routes_for
from services.alerts.metrics import AlertMetrics
from services.alerts.repository import (
    AlertRepository,
    AlertRow,
    KpiLatest,
    KpiRepository,
    SilenceRepository,
)
from services.alerts.repository.outbox import NewNotification, OutboxRepository
from shared.contracts.kpi_values import MAX_OWNER_NAME, Owner
from shared.contracts.text import fold_line
from shared.i18n import LocalePolicy
from shared.settings import AlertsSettings

log = logging.getLogger(__name__)

# Conditions that have their own delay built in (two update periods, a calendar date).
_NO_HOLD_DOWN = frozenset(
    {Condition.STALE, Condition.EXPIRING_SOON, Condition.EXPIRED, Condition.VALUE_DUE}
)


@dataclass(frozen=True, slots=True)
class Evaluation:
    condition: Condition
    worse: bool
    recovered: bool
    value: float | None
    # Names the episode in the dedupe key; defaults to its start time.
    episode: str | None = None


class AlertWriter:
    def __init__(
        self,
        settings: AlertsSettings,
        metrics: AlertMetrics,
        tz: tzinfo = UTC,
        locales: LocalePolicy | None = None,
        ack_key: bytes | None = None,
    ) -> None:
        self._settings = settings
        self._metrics = metrics
        # Notices tell the time on the company's calendar (KPIPULSE_TIME_ZONE).
        self._tz = tz
        self.locales = locales or LocalePolicy()
        # Signs the acknowledgement link of each alert email (None: emails carry none).
        self._ack_key = ack_key
        self.alerts = AlertRepository()
        self.kpis = KpiRepository()
        self.silences = SilenceRepository()
        self.outbox = OutboxRepository()

    def hold_down_s(self, kpi_key: str, condition: Condition) -> float:
        if condition in _NO_HOLD_DOWN:
            return 0
        return self._settings.hold_down_overrides_s.get(kpi_key, self._settings.hold_down_s)

    def recovery_margin(self, kpi_key: str) -> float:
        return self._settings.recovery_margin_overrides.get(kpi_key, self._settings.recovery_margin)

    async def apply(
        self,
        session: AsyncSession,
        latest: KpiLatest,
        current: AlertRow | None,
        evaluation: Evaluation,
        now: datetime,
    ) -> int:
        """Record the transitions ``evaluation`` causes; returns notices enqueued."""
        condition = evaluation.condition
        steps = step(
            OpenAlert(current.state, current.started_at) if current else None,
            worse=evaluation.worse,
            recovered=evaluation.recovered,
            now=now,
            hold_down_s=self.hold_down_s(latest.kpi_key, condition),
        )
        alert = current
        enqueued = 0
        for transition in steps:
            if transition.from_state is None:
                key = dedupe_key(latest.kpi_key, condition, evaluation.episode or now.isoformat())
                alert_id = await self.alerts.open(
                    session,
                    kpi_key=latest.kpi_key,
                    condition=condition,
                    severity=SEVERITY[condition],
                    dedupe_key=key,
                    open_key=open_key(latest.kpi_key, condition),
                    value=evaluation.value,
                    now=now,
                )
                if alert_id is None:
                    return enqueued  # this episode exists already: never notify twice
                alert = await self.alerts.get(session, alert_id)
                self._metrics.transitions.labels(condition.value, State.PENDING.value).inc()
                continue
            assert alert is not None
            moved = await self.alerts.move(
                session,
                alert.id,
                from_state=transition.from_state,
                to_state=transition.to_state,
                value=evaluation.value,
                now=now,
            )
            if not moved:
                return enqueued  # someone else applied this step first
            self._metrics.transitions.labels(condition.value, transition.to_state.value).inc()
            notify = transition.notify
            if notify is None or (notify == "resolved" and condition in ONE_SHOT):
                continue
            ended = now if transition.to_state is State.RESOLVED else None
            enqueued += await self.notify(
                session, alert, latest, kind=notify, value=evaluation.value, now=now, ended=ended
            )
        return enqueued

    def _with_ack_link(
        self, payload: dict[str, Any], alert_id: int, route: Route, kind: str, now: datetime
    ) -> dict[str, Any]:
        if self._ack_key is None or route.channel != "email" or kind == "resolved":
            return payload
        expires = now + timedelta(seconds=self._settings.ack_link_ttl_s)
        token = sign_ack(alert_id, route.target, expires, self._ack_key)
        return with_ack_link(payload, f"{self._settings.public_url.rstrip('/')}/v1/ack/{token}")

    async def notify(
        self,
        session: AsyncSession,
        alert: AlertRow,
        latest: KpiLatest,
        *,
        kind: str,
        value: float | None,
        now: datetime,
        ended: datetime | None = None,
    ) -> int:
        owners, refused = _stored_owners(latest.owners)
        trend = await self.kpis.trend(session, latest.kpi_key, self._settings.trend_points)
        facts = AlertFacts(
            alert_id=alert.id,
            dedupe_key=alert.dedupe_key,
            kpi_key=latest.kpi_key,
            kpi_name=latest.name,
            condition=alert.condition,
            severity=alert.severity,
            kind=kind,
            value=value,
            minimum=latest.minimum,
            target=latest.target,
            direction=latest.direction,
            started_at=alert.started_at.astimezone(self._tz),
            ended_at=ended.astimezone(self._tz) if ended else None,
            scorecard_url=self._settings.scorecard_url,
            owners=tuple(owner.name for owner in owners),
            trend=tuple(trend),
            expires_on=latest.expires_on,
            last_value_at=(
                latest.last_value_at.astimezone(self._tz) if latest.last_value_at else None
            ),
            leading_in_breach=tuple(latest.leading_in_breach),
        )
        routes = routes_for(owners, self._settings.default_email, refused)
        silenced = bool(await self.silences.silenced_kpis(session, {latest.kpi_key}, now))
        items = [
            NewNotification(
                alert_id=alert.id,
                channel=route.channel,
                target=route.target,
                kind=kind,
                # Each recipient reads it in their own language (the company's by default).
                payload=self._with_ack_link(
                    payload_for(facts, route, self.locales.for_person(route.target)),
                    alert.id, route, kind, now,
                ),
                suppressed=silenced,
                undeliverable=route.reason,
            )
            for route in routes
        ]
        await self.outbox.enqueue(session, items, now)
        if silenced:
            for item in items:
                self._metrics.suppressed.labels(item.channel).inc()
            return 0
        for item in items:
            if item.undeliverable is not None:
                self._metrics.undeliverable.inc()
                log.warning(
                    "a notification has nobody to go to",
                    extra={"kpi": latest.kpi_key, "error": item.undeliverable},
                )
        return sum(1 for route in routes if route.deliverable)


def _stored_owners(
    stored: Sequence[Mapping[str, Any]],
) -> tuple[list[Owner], list[tuple[str, str]]]:
    """The owners of a stored KPI that still validate, and (name, problem) of the rest.

    Rows written before owner addresses were validated may hold a list of addresses:
    their owner is routed as unreachable, instead of the error stopping every notice of
    the KPI (and the scheduler's round) for ever.
    """
    owners: list[Owner] = []
    refused: list[tuple[str, str]] = []
    for raw in stored:
        try:
            owners.append(Owner.model_validate(raw))
        except ValidationError as exc:
            name = fold_line(str(raw.get("name") or "?"))[:MAX_OWNER_NAME]
            first = exc.errors(include_url=False)[0]
            where = ".".join(str(part) for part in first["loc"])
            refused.append((name, f"{where}: {first['msg']}"))
    return owners, refused
