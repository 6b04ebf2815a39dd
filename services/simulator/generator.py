"""A realistic day of a small SaaS company's activity, as native ingest events.

Pure: given a random generator and a day, it returns event dicts in the shape
``POST /v1/events`` accepts, with the event types and properties the example catalog
measures (channels, trials, deals, payments, email campaigns, tickets, CSAT...).
Scenarios bend one part of the business so a KPI crosses its minimum.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any, Literal

Scenario = Literal["steady", "complaints_spike", "trial_slump", "email_bounces"]
SCENARIOS: tuple[Scenario, ...] = ("steady", "complaints_spike", "trial_slump", "email_bounces")

Event = dict[str, Any]

_CHANNELS = (("organic", 0.45), ("paid", 0.25), ("social", 0.15), ("direct", 0.15))
_FEATURES = ("reports", "dashboards", "exports", "alerts")


def _pick(rng: random.Random, weighted: tuple[tuple[str, float], ...]) -> str:
    return rng.choices([name for name, _ in weighted], [w for _, w in weighted])[0]


class DayGenerator:
    """Events for one simulated day; ``scale`` multiplies every volume."""

    def __init__(self, rng: random.Random, *, scale: float = 1.0, scenario: Scenario = "steady"):
        self._rng = rng
        self._scale = scale
        self._scenario = scenario

    def _n(self, mean: float) -> int:
        return max(0, round(self._rng.gauss(mean * self._scale, (mean * self._scale) ** 0.5)))

    def _at(self, day: datetime) -> str:
        return (day + timedelta(seconds=self._rng.uniform(0, 86_399))).isoformat()

    def _event(
        self,
        day: datetime,
        source: str,
        type_: str,
        *,
        subject: str | None = None,
        value: float | None = None,
        **properties: Any,
    ) -> Event:
        event: Event = {
            "event_id": uuid.UUID(int=self._rng.getrandbits(128)).hex,
            "source": source,
            "type": type_,
            "occurred_at": self._at(day),
            "properties": properties,
        }
        if subject is not None:
            event["subject_id"] = subject
        if value is not None:
            event["value"] = value
        return event

    def day(self, day: datetime) -> list[Event]:
        """Every event of the simulated ``day`` (its start), in time order."""
        events = [*self._web(day), *self._crm(day), *self._email(day), *self._support(day)]
        events.sort(key=lambda e: e["occurred_at"])
        return events

    def _user(self) -> str:
        return f"user-{self._rng.randint(1, int(2000 * self._scale) + 10)}"

    def _web(self, day: datetime) -> Iterator[Event]:
        rng = self._rng
        for _ in range(self._n(2200)):
            yield self._event(
                day,
                "web",
                "session_started",
                subject=self._user(),
                channel=_pick(rng, _CHANNELS),
                bounced=rng.random() < 0.38,
                returning=rng.random() < 0.35,
            )
        signups = self._n(30)
        for _ in range(signups):
            yield self._event(day, "web", "signup", subject=self._user())
        trial_share = 0.25 if self._scenario == "trial_slump" else 0.7
        for _ in range(round(signups * trial_share)):
            yield self._event(day, "web", "trial_started", subject=self._user())
        for _ in range(self._n(120)):
            yield self._event(
                day, "web", "feature_used", subject=self._user(), feature=rng.choice(_FEATURES)
            )

    def _crm(self, day: datetime) -> Iterator[Event]:
        rng = self._rng
        for _ in range(self._n(25)):
            yield self._event(day, "crm", "lead_created", source_channel=_pick(rng, _CHANNELS))
        for _ in range(self._n(9)):
            yield self._event(day, "crm", "lead_qualified", qualification="sql")
        for _ in range(self._n(3)):
            yield self._event(day, "crm", "deal_won", value=round(rng.uniform(300, 3000), 2))
        for _ in range(self._n(2)):
            yield self._event(day, "crm", "deal_lost")
        for _ in range(self._n(4)):
            yield self._event(day, "crm", "subscription_started", subject=self._user())
        for _ in range(self._n(0.6)):
            yield self._event(day, "crm", "subscription_cancelled", subject=self._user())
        for _ in range(self._n(40)):
            yield self._event(
                day,
                "crm",
                "payment_received",
                subject=self._user(),
                value=round(rng.uniform(29, 299), 2),
            )
        yield self._event(
            day, "crm", "marketing_spend", value=round(rng.uniform(150, 450) * self._scale, 2)
        )

    def _email(self, day: datetime) -> Iterator[Event]:
        rng = self._rng
        bounce = 0.12 if self._scenario == "email_bounces" else 0.02
        for _ in range(self._n(300)):
            subject = self._user()
            yield self._event(day, "email", "email_sent", subject=subject, campaign="weekly")
            if rng.random() < bounce:
                yield self._event(day, "email", "email_bounced", subject=subject)
                continue
            yield self._event(day, "email", "email_delivered", subject=subject)
            if rng.random() < 0.28:
                yield self._event(day, "email", "email_opened", subject=subject)
                if rng.random() < 0.15:
                    yield self._event(day, "email", "email_clicked", subject=subject)
            if rng.random() < 0.003:
                yield self._event(day, "email", "email_unsubscribed", subject=subject)

    def _support(self, day: datetime) -> Iterator[Event]:
        rng = self._rng
        backlog = rng.randint(5, 25)
        for _ in range(self._n(20)):
            backlog += 1
            yield self._event(day, "support", "ticket_opened", open_tickets=backlog)
            yield self._event(
                day, "support", "ticket_first_response", minutes=round(rng.uniform(5, 90), 1)
            )
        for _ in range(self._n(18)):
            backlog = max(0, backlog - 1)
            yield self._event(
                day,
                "support",
                "ticket_resolved",
                open_tickets=backlog,
                hours=round(rng.lognormvariate(2.0, 0.6), 2),
            )
        for _ in range(self._n(8)):
            yield self._event(day, "support", "csat_response", satisfied=rng.random() < 0.86)
        # Steady: about 15 a month, below the example catalog's baseline of 18. The spike
        # alone is well past its minimum of 30 (a 30-day count), so the scenario breaches
        # whatever the seed and however few steady days precede it.
        complaints = 40.0 if self._scenario == "complaints_spike" else 0.5
        for _ in range(self._n(complaints)):
            yield self._event(day, "support", "complaint_received")
        for _ in range(self._n(50)):
            yield self._event(
                day,
                "support",
                "call_handled",
                channel="self_service" if rng.random() < 0.4 else "agent",
            )


def simulated_days(
    rng: random.Random,
    *,
    days: int,
    now: datetime,
    scenario: Scenario = "steady",
    scale: float = 1.0,
) -> Iterator[list[Event]]:
    """``days`` days of events ending at ``now``; ``scenario`` bends the last one only."""
    for index in range(days):
        bent: Scenario = scenario if index == days - 1 else "steady"
        generator = DayGenerator(rng, scale=scale, scenario=bent)
        yield generator.day(now - timedelta(days=days - index))
