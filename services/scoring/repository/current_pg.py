"""PostgreSQL's claim of a tick's KPI values: one statement for all of them."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime

import orjson
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from services.scoring.repository.current import (
    TREND_ROWS,
    Claim,
    CurrentRepository,
    Trend,
    thinned,
)

# Rows are locked in key order first, so two instances claiming the same KPIs cannot
# deadlock.
_LOCK = text(
    "SELECT c.kpi_key FROM kpi_current AS c"
    " JOIN jsonb_array_elements_text(CAST(CAST(:keys AS text) AS jsonb)) AS k(kpi_key)"
    " ON c.kpi_key = k.kpi_key ORDER BY c.kpi_key FOR UPDATE OF c"
)
_CLAIM = text(
    "WITH v AS (SELECT * FROM jsonb_to_recordset(CAST(CAST(:rows AS text) AS jsonb)) AS v("
    " kpi_key text, value float8, numerator float8, denominator float8, status text,"
    " score float8, as_of timestamptz, published_at timestamptz, not_since timestamptz)),"
    " updated AS ("
    " UPDATE kpi_current AS c SET value = v.value, numerator = v.numerator,"
    " denominator = v.denominator, status = v.status, score = v.score, as_of = v.as_of,"
    # SET expressions see the row as it was: the claim compares old and new.
    " published_at = CASE WHEN c.status <> v.status OR c.published_at <= v.not_since"
    " THEN v.published_at ELSE c.published_at END"
    " FROM v WHERE c.kpi_key = v.kpi_key"
    " RETURNING c.kpi_key, c.published_at = v.published_at AS claimed),"
    " inserted AS ("
    " INSERT INTO kpi_current"
    " (kpi_key, value, numerator, denominator, status, score, as_of, published_at)"
    " SELECT v.kpi_key, v.value, v.numerator, v.denominator, v.status, v.score, v.as_of,"
    " v.published_at FROM v WHERE v.kpi_key NOT IN (SELECT kpi_key FROM updated)"
    " ON CONFLICT (kpi_key) DO NOTHING RETURNING kpi_key),"
    " claims AS (SELECT kpi_key FROM updated WHERE claimed"
    " UNION ALL SELECT kpi_key FROM inserted),"
    " history AS (INSERT INTO kpi_history (kpi_key, at, value, status, score)"
    " SELECT v.kpi_key, v.as_of, v.value, v.status, v.score FROM v JOIN claims USING (kpi_key))"
    " SELECT kpi_key FROM claims"
)


# Each KPI's newest publications through the (kpi_key, at) index, at most :limit each,
# then thinned as ``current.thin`` does.
_TRENDS = text(
    "SELECT kpi_key, at, value, status FROM ("
    " SELECT k.kpi_key, h.at, h.value, h.status,"
    " row_number() OVER (PARTITION BY k.kpi_key ORDER BY h.at DESC) AS rank,"
    " count(*) OVER (PARTITION BY k.kpi_key) AS found"
    " FROM jsonb_to_recordset(CAST(CAST(:since AS text) AS jsonb))"
    " AS k(kpi_key varchar, since timestamptz)"
    " CROSS JOIN LATERAL (SELECT h.at, h.value, h.status FROM kpi_history AS h"
    " WHERE h.kpi_key = k.kpi_key AND h.at >= k.since ORDER BY h.at DESC LIMIT :limit) AS h"
    " ) AS newest"
    " WHERE (found - rank) % greatest(found / :points, 1) = 0"
    " ORDER BY kpi_key, rank DESC"
)


class PostgresCurrentRepository(CurrentRepository):
    async def trends(
        self,
        session: AsyncSession,
        since: Mapping[str, datetime],
        *,
        points: int,
        limit: int = TREND_ROWS,
    ) -> dict[str, Trend]:
        if not since:
            return {}
        wanted = orjson.dumps([{"kpi_key": k, "since": s} for k, s in since.items()]).decode()
        rows = await session.execute(
            _TRENDS, {"since": wanted, "limit": limit, "points": points}
        )
        return thinned(rows)

    async def claim_publications(
        self, session: AsyncSession, claims: Sequence[Claim]
    ) -> set[str]:
        if not claims:
            return set()
        keys = sorted(c.value.kpi_key for c in claims)
        await session.execute(_LOCK, {"keys": orjson.dumps(keys).decode()})
        rows = orjson.dumps(
            [
                {
                    "kpi_key": c.value.kpi_key,
                    "value": c.value.value,
                    "numerator": c.value.numerator,
                    "denominator": c.value.denominator,
                    "status": c.value.status,
                    "score": c.value.score,
                    "as_of": c.value.as_of,
                    "published_at": c.value.published_at,
                    "not_since": c.not_since,
                }
                for c in claims
            ]
        )
        result = await session.execute(_CLAIM, {"rows": rows.decode()})
        return set(result.scalars())
