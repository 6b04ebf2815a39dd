"""Publishing a validated request and answering per event (native and Segment routes)."""

from __future__ import annotations

from typing import Any

from starlette.responses import Response

from services.ingest.api.common import ApiError, json_response, unavailable
from services.ingest.api.context import IngestContext
from services.ingest.domain.envelopes import Rejection, Validated
from services.ingest.publishing import Outcome
from shared.bus.ports import PublishError


def rejections(items: list[Rejection]) -> list[dict[str, Any]]:
    return [{"index": r.index, "reason": r.reason} for r in items]


def nothing_valid(outcome: Outcome) -> ApiError:
    """422 naming what was wrong with each event (all of them dead-lettered already)."""
    return ApiError(
        422,
        "invalid_events",
        "no valid event in the request: " + "; ".join(
            f"[{r.index}] {r.reason}" for r in outcome.rejected[:5]
        ),
        extra={"accepted": [], "rejected": rejections(outcome.rejected)},
    )


async def publish(
    ctx: IngestContext, source: str, validated: Validated, *, body: bytes
) -> Outcome:
    try:
        return await ctx.ingestor.publish(source, validated, body=body)
    except PublishError as exc:
        raise unavailable(
            ctx.settings.ingest.retry_after_s, "Kafka did not acknowledge the events"
        ) from exc


async def publish_and_answer(
    ctx: IngestContext,
    source: str,
    validated: Validated,
    *,
    body: bytes,
    extra: dict[str, Any] | None = None,
) -> Response:
    """200 with accepted ids and rejections, or 422 when no event was valid.

    Rejected events are dead-lettered either way, before the answer.
    """
    outcome = await publish(ctx, source, validated, body=body)
    if not outcome.accepted:
        raise nothing_valid(outcome)
    answer = {**(extra or {}), "accepted": outcome.accepted,
              "rejected": rejections(outcome.rejected)}
    return json_response(answer)
