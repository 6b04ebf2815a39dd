"""Scoring end to end on the real broker and database: events in, exact KPI values out."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import httpx
import orjson
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from services.scoring.tables import kpi_current
from shared.bus.dlq import describe
from shared.bus.factory import create_publisher
from shared.bus.kafka_consumer import KafkaSubscriber
from shared.bus.ports import Message, OutgoingRecord
from shared.contracts.events import EventEnvelope
from shared.contracts.kpi_values import KpiValueMessage
from shared.settings import Settings
from tests.conftest import ADMIN_TOKEN
from tests.integration.scoring.conftest import eventually

ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


def event(
    source: str,
    type_: str,
    *,
    value: float | None = None,
    subject: str | None = None,
    age: timedelta = timedelta(minutes=5),
) -> EventEnvelope:
    now = datetime.now(UTC)
    return EventEnvelope(
        event_id=uuid.uuid4().hex,
        source=source,
        type=type_,
        occurred_at=now - age,
        received_at=now,
        subject_id=subject,
        value=value,
    )


async def publish(settings: Settings, records: list[OutgoingRecord]) -> None:
    publisher = create_publisher(settings.kafka, client_id="test-events")
    await publisher.start()
    try:
        await publisher.publish(settings.kafka.topics().events, records)
    finally:
        await publisher.stop()


def as_record(e: EventEnvelope) -> OutgoingRecord:
    return OutgoingRecord(key=e.event_id.encode(), value=e.to_bytes())


async def read_topic(settings: Settings, topic: str, want: int) -> list[Message]:
    """Read at least ``want`` messages of ``topic`` from its beginning."""
    got: list[Message] = []
    sub = KafkaSubscriber(settings.kafka, topics=[topic], group_id=f"t-{uuid.uuid4().hex[:6]}")

    async def handler(batch: Sequence[Message]) -> None:
        got.extend(batch)

    await sub.start()
    task = asyncio.create_task(sub.run(handler))
    try:
        await eventually(lambda: len(got) >= want, timeout=30)
    finally:
        await sub.stop()
        await task
    return got


async def test_events_become_exact_kpi_values_with_dedupe_and_dlq(
    scoring_settings: Settings,
    scoring_db: tuple[AsyncEngine, async_sessionmaker[AsyncSession]],
    scoring_app: httpx.AsyncClient,
) -> None:
    complaints = [event("support", "complaint_received") for _ in range(12)]
    payments = [event("crm", "payment_received", value=v) for v in (100.25, 200.5, 0.25)]
    users = [event("web", "feature_used", subject=f"u{i % 4}") for i in range(20)]
    too_old = event("support", "complaint_received", age=timedelta(days=400))
    records = [as_record(e) for e in [*complaints, *payments, *users, too_old]]
    # The same event delivered twice (a client retry) counts once.
    records.append(as_record(complaints[0]))
    records.append(OutgoingRecord(key=b"broken", value=b'{"event_id": 1}'))
    await publish(scoring_settings, records)

    _, sessions = scoring_db

    async def values() -> dict[str, tuple[float | None, str]] | None:
        async with sessions() as session:
            rows = (await session.execute(select(kpi_current))).mappings().all()
        found = {r["kpi_key"]: (r["value"], r["status"]) for r in rows}
        wanted = {"complaints": 12.0, "revenue": 301.0, "active_users": 4.0}
        ok = all(found.get(k, (None, ""))[0] == v for k, v in wanted.items())
        return found if ok else None

    found = await eventually(values, timeout=45)
    assert found["complaints"] == (12.0, "breach")  # lower is better, minimum 10
    assert found["revenue"] == (301.0, "below_target")
    assert found["active_users"] == (4.0, "below_target")

    listing = (await scoring_app.get("/v1/kpis", headers=ADMIN)).json()["kpis"]
    by_key = {k["key"]: k for k in listing}
    assert by_key["complaints"]["status"] == "breach"
    assert by_key["complaints"]["score"] == 0.0
    assert by_key["revenue"]["early_warning"] == []

    card = (await scoring_app.get("/v1/scorecard", headers=ADMIN)).json()
    financial = next(p for p in card["perspectives"] if p["perspective"] == "financial")
    assert financial["score"] is not None and 0 < financial["score"] < 100

    detail = (await scoring_app.get("/v1/kpis/revenue", headers=ADMIN)).json()
    assert detail["definition"]["key"] == "revenue"
    assert detail["periods"][-1]["actual"] == 301.0
    assert detail["lead_lag"][0]["leading"] == "active_users"

    history = (
        await scoring_app.get(
            "/v1/kpis/complaints/history", params={"step": 3600}, headers=ADMIN
        )
    ).json()
    assert history["points"][-1]["value"] == 12.0

    assert (await scoring_app.get("/v1/kpis/nope", headers=ADMIN)).status_code == 404
    bad = await scoring_app.get(
        "/v1/kpis/complaints/history", params={"from": "2026-01-01T00:00"}, headers=ADMIN
    )
    assert bad.status_code == 422 and "time zone" in bad.text

    values_topic = scoring_settings.kafka.topics().kpi_values
    messages = await read_topic(scoring_settings, values_topic, 3)
    parsed = [KpiValueMessage.from_bytes(m.value) for m in messages]
    assert {m.kpi_key for m in parsed} >= {"complaints", "revenue", "active_users"}
    assert all(m.key == p.kpi_key.encode() for m, p in zip(messages, parsed, strict=True))

    letters = await read_topic(scoring_settings, scoring_settings.kafka.topics().events_dlq, 2)
    reasons = sorted(str(describe(m)["reason"]) for m in letters)
    assert any(r.startswith("invalid event: ") for r in reasons)
    assert any("retention" in r for r in reasons), reasons
    assert orjson.loads(letters[0].value) is not None

    # Retiring a KPI announces it once, so that alerts stops watching it.
    retired = await scoring_app.delete(
        "/v1/kpis/complaints",
        params={"take_over": "true"},  # the catalog file manages it
        headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
    )
    assert retired.status_code == 204, retired.text

    async def announced() -> list[KpiValueMessage]:
        messages = await read_topic(scoring_settings, values_topic, 1)
        return [
            p for m in messages if (p := KpiValueMessage.from_bytes(m.value)).retired
        ]

    (farewell,) = await eventually(announced, timeout=30)
    assert (farewell.kpi_key, farewell.value, farewell.status) == ("complaints", None, "no_data")
    assert farewell.minimum == 10  # its last definition, for whoever shows it
    async with sessions() as session:
        keys = set((await session.execute(select(kpi_current.c.kpi_key))).scalars())
    assert "complaints" not in keys and "revenue" in keys


async def test_admin_changes_need_the_token(scoring_app: httpx.AsyncClient) -> None:
    missing = await scoring_app.delete("/v1/kpis/revenue")
    assert missing.status_code == 401
    wrong = await scoring_app.delete("/v1/kpis/revenue", headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401
    ok = await scoring_app.delete(
        "/v1/kpis/active_users",
        params={"take_over": "true"},
        headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
    )
    # revenue lists active_users as its leading indicator: retiring it is refused.
    assert ok.status_code == 422
    assert "active_users" in ok.text
    changes = (
        await scoring_app.get("/v1/kpis/revenue/changes", headers=ADMIN)
    ).json()["changes"]
    assert changes[0]["action"] == "created" and changes[0]["actor"] == "startup"


async def test_a_window_still_filling_is_partial_until_history_covers_it(
    scoring_settings: Settings, scoring_app: httpx.AsyncClient
) -> None:
    """Complaints began an hour ago: the 7-day window is partial, in the API and on the
    message alerts reads. A backfill from before the window makes it full."""
    await publish(
        scoring_settings,
        [as_record(event("support", "complaint_received", age=timedelta(hours=1)))],
    )

    async def complaints(partial: bool) -> dict[str, object] | None:
        listing = (await scoring_app.get("/v1/kpis", headers=ADMIN)).json()["kpis"]
        view: dict[str, object] = next(k for k in listing if k["key"] == "complaints")
        return view if view["value"] is not None and view["partial"] is partial else None

    filling = await eventually(lambda: complaints(True), timeout=45)
    coverage = filling["coverage"]
    assert isinstance(coverage, float) and 0 < coverage < 0.02  # about an hour of 7 days
    assert filling["require_full_window"] is True
    values_topic = scoring_settings.kafka.topics().kpi_values

    async def complaints_message(partial: bool) -> KpiValueMessage | None:
        messages = await read_topic(scoring_settings, values_topic, 1)
        parsed = [KpiValueMessage.from_bytes(m.value) for m in messages]
        wanted = [p for p in parsed if p.kpi_key == "complaints" and p.value is not None]
        return next((p for p in wanted if p.partial is partial), None)

    first = await eventually(lambda: complaints_message(True), timeout=45)
    assert first.coverage < 0.02

    await publish(
        scoring_settings,
        [as_record(event("support", "complaint_received", age=timedelta(days=8)))],
    )
    full = await eventually(lambda: complaints(False), timeout=45)
    assert full["coverage"] == 1.0
    assert full["value"] == 1.0  # the backfilled event lies before the window

    full_message = await eventually(lambda: complaints_message(False), timeout=45)
    assert full_message.coverage == 1.0
