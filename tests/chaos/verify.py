"""What every fault test provokes, checks afterwards, and the bookkeeping it shares."""

from __future__ import annotations

import asyncio
import json
import math
import time
from collections import Counter

import httpx

from shared.db.engine import create_engine, create_session_factory
from shared.settings import Settings
from tests.chaos import checks
from tests.chaos.conftest import SUMMARIES, SmtpRecorder
from tests.chaos.load import COMPLAINT, PAGE_VIEW, PAYMENT, SIGNUP, Loader
from tests.chaos.stack import COMPLAINT_MINIMUM, OWNERS, SIGNUP_MINIMUM, SIGNUP_TARGET

KPI_OF = {
    PAGE_VIEW: "chaos_page_views",
    PAYMENT: "chaos_revenue",
    SIGNUP: "chaos_signups",
    COMPLAINT: "chaos_complaints",
}
# The alert episodes the test provokes, as (owner, subject prefix) → copies expected.
EXPECTED_MAILS = {
    (OWNERS["chaos_signups"], "[FIRING]"): 1,
    (OWNERS["chaos_signups"], "[RESOLVED]"): 1,
    (OWNERS["chaos_complaints"], "[FIRING]"): 1,
}


class Timeline:
    """What happened when, for the summary."""

    def __init__(self) -> None:
        self.started = time.monotonic()
        self.steps: list[str] = []

    def note(self, what: str) -> None:
        self.steps.append(f"{time.monotonic() - self.started:6.1f}s {what}")


async def wait_status(settings: Settings, kpi: str, statuses: set[str]) -> None:
    engine = create_engine(settings.database)
    sessions = create_session_factory(engine)

    async def reached() -> bool:
        return (await checks.current_statuses(sessions)).get(kpi) in statuses

    try:
        await checks.eventually(reached, timeout=90, what=f"{kpi} status in {statuses}")
    finally:
        await engine.dispose()


async def open_episodes(settings: Settings, loader: Loader, timeline: Timeline) -> None:
    """Breach the signups minimum (FIRING due) and stay under the complaints one."""
    await loader.deliver(loader.make(SIGNUP, SIGNUP_MINIMUM // 2))
    await loader.deliver(loader.make(COMPLAINT, 5))
    await wait_status(settings, "chaos_signups", {"breach"})
    timeline.note("signups breached (FIRING due)")


async def recover_signups(settings: Settings, loader: Loader) -> None:
    """Signups reach their target: the RESOLVED notice is due."""
    await loader.deliver(loader.make(SIGNUP, SIGNUP_TARGET))
    await wait_status(settings, "chaos_signups", {"on_target"})


async def breach_complaints(loader: Loader) -> None:
    """Complaints pass their minimum: the last FIRING notice is due, and it stays so."""
    await loader.deliver(loader.make(COMPLAINT, COMPLAINT_MINIMUM + 10))


async def verify(
    settings: Settings,
    bootstrap: str,
    urls: tuple[str, str],
    loader: Loader,
    smtp: SmtpRecorder,
    timeline: Timeline,
    extra: dict[str, object],
    seed: int,
    label: str,
) -> None:
    """Nothing acknowledged lost or counted twice; exactly the provoked mails.

    ``urls``: a live scoring instance's and a live alerts instance's base URL.
    """
    scoring_url, alerts_url = urls
    stats = loader.stats
    assert not stats.abandoned_batches, f"{stats.abandoned_batches} batch(es) never accepted"
    assert not stats.unexpected, f"unexpected answers from ingest: {stats.unexpected[:10]}"
    # Clients that retried lost nothing: every generated event was acknowledged.
    assert set(loader.acked) == set(loader.generated)
    expected = checks.Expected.from_events(list(loader.acked.values()), KPI_OF)

    engine = create_engine(settings.database)
    sessions = create_session_factory(engine)
    try:
        topic = settings.kafka.topics().events
        ends = await checks.topic_end(bootstrap, topic)

        async def consumed_all() -> bool:
            stored = await checks.stored_offsets(sessions, settings.scoring.group_id, topic)
            return all(stored.get(p, 0) >= end for p, end in ends.items())

        await checks.eventually(consumed_all, timeout=120, what="scoring consumed the topic")
        timeline.note("scoring consumed every record in the events topic")

        counts, sums = await checks.bucket_totals(sessions)
        for kpi, count in expected.counts.items():
            assert counts.get(kpi, 0) == count, f"{kpi}: counted {counts.get(kpi)}, sent {count}"
        assert sums["chaos_revenue"] == expected.revenue_micros
        # Each acknowledged event counted, and nothing else: the ids scoring claimed.
        processed = await checks.processed_ids(sessions)
        assert processed == set(loader.acked), (
            f"missing {len(set(loader.acked) - processed)}, unknown "
            f"{len(processed - set(loader.acked))}"
        )
        assert loader.retried_ids <= processed  # 503 / refused, re-sent, counted once
        for kpi, count in expected.counts.items():
            value = checks.rolling_value(scoring_url, kpi)
            if kpi == "chaos_revenue":
                assert value is not None
                assert math.isclose(value, expected.revenue_micros / 1e6, rel_tol=1e-12)
            else:
                assert value == count, f"{kpi}: value {value}, expected {count}"

        # Notifications: exactly the provoked episodes, each notice delivered.
        async def all_delivered() -> bool:
            rows = await checks.outbox_rows(sessions)
            return len(rows) == len(EXPECTED_MAILS) and all(r.status == "sent" for r in rows)

        await checks.eventually(all_delivered, timeout=120, what="every notice delivered")
        # A notice whose send was interrupted is re-sent after its lease: wait past it.
        await asyncio.sleep(10)
        rows = await checks.outbox_rows(sessions)
        episodes = await checks.alert_episodes(sessions)
    finally:
        await engine.dispose()
    assert sorted(episodes) == [
        ("chaos_complaints", "below_minimum", "firing"),
        ("chaos_signups", "below_minimum", "resolved"),
    ], episodes
    uncertain = sum(r.uncertain_resends for r in rows)
    received: Counter[tuple[str, str]] = Counter()
    for mail in smtp.mails:
        prefix = mail.subject.split("]", 1)[0] + "]"
        for recipient in mail.recipients:
            received[(recipient, prefix)] += 1
    allowed = {
        (r.target, "[FIRING]" if r.kind == "firing" else "[RESOLVED]"): r.uncertain_resends
        for r in rows
    }
    assert set(received) == set(EXPECTED_MAILS), f"mails: {received}, outbox: {rows}"
    for mail_key, copies in EXPECTED_MAILS.items():
        got = received[mail_key]
        assert copies <= got <= copies + allowed.get(mail_key, 0), (
            f"{mail_key}: {got} mail(s), expected {copies} (+{allowed.get(mail_key, 0)} "
            f"uncertain); outbox: {rows}"
        )
    metric = _uncertain_metric(alerts_url)

    summary = {
        "seed": seed,
        **stats.summary(),
        **extra,
        "status_codes": loader.statuses,
        "expected_counts": expected.counts,
        "revenue": str(expected.revenue_micros / 1_000_000),
        "mails": {f"{r} {p}": n for (r, p), n in sorted(received.items())},
        "uncertain_resends_outbox": uncertain,
        "uncertain_metric_since_last_restart": metric,
    }
    SUMMARIES.append(f"{label}: " + json.dumps(summary, sort_keys=True))
    SUMMARIES.extend(f"  {step}" for step in timeline.steps)


def _uncertain_metric(alerts_url: str) -> float:
    text = httpx.get(f"{alerts_url}/metrics", timeout=10).text
    total = 0.0
    for line in text.splitlines():
        if line.startswith("kpipulse_notifications_uncertain_total"):
            total += float(line.rsplit(" ", 1)[1])
    return total
