"""Governance gaps on the read side: the `gap_reviews` read model (from the audit entries that
accept or reopen a gap), and the queries of the API over the tables a gap-analysis run writes
(`gaps`, `gap_runs`), each gap with its status.

A purged tenant's gap rows go with it.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from psycopg import AsyncConnection, Cursor
from psycopg.rows import DictRow

from domain.audit import AuditEntry
from domain.policy.gaps.tracking import REVIEW_ACTIONS
from domain.tenant.aggregate import Tenant

_REVIEW = """
INSERT INTO gap_reviews (gap_id, tenant_id, status, reason, reviewed_by, reviewed_at)
VALUES (%(gap_id)s, %(tenant_id)s, %(status)s, %(reason)s, %(by)s, %(at)s)
ON CONFLICT (gap_id) DO UPDATE SET status = EXCLUDED.status, reason = EXCLUDED.reason,
    reviewed_by = EXCLUDED.reviewed_by, reviewed_at = EXCLUDED.reviewed_at
"""
_PURGED = ("gap_reviews", "gaps", "gap_run_findings", "gap_runs")


class GapReviewsProjection:
    name = "gap_reviews"
    tables = ("gap_reviews",)

    def apply(self, cur: Cursor[Any], event: Any) -> None:
        if isinstance(event, Tenant.Purged):
            for table in _PURGED:
                cur.execute(f"DELETE FROM {table} WHERE tenant_id = %s", [event.originator_id])  # noqa: S608 - fixed tables and WHERE fragments; values bound  # nosec B608
        elif (
            isinstance(event, AuditEntry.Recorded)
            and event.action in REVIEW_ACTIONS.values()
            and event.result == "success"
        ):
            cur.execute(
                _REVIEW,
                {
                    "gap_id": event.details["gap_id"],
                    "tenant_id": event.meta["tenant_id"],
                    "status": event.details["status"],
                    "reason": event.details["reason"],
                    "by": str(event.meta["actor"]["sub"])[:255],
                    "at": event.timestamp,
                },
            )


# --- queries (run inside a tenant session) --------------------------------------------------------

STATUS = (
    "CASE WHEN g.fixed_at IS NOT NULL THEN 'fixed' "
    "WHEN r.status = 'accepted' THEN 'accepted' ELSE 'open' END"
)
_GAP = f"""
SELECT g.gap_id, g.rule_id, g.severity, g.policy_key, g.policy_version, g.location, g.detail,
    {STATUS} AS status, g.first_seen_at, g.last_seen_at, g.last_seen_run, g.fixed_at,
    g.fixed_in_run, r.status AS review_status, r.reason AS review_reason,
    r.reviewed_by, r.reviewed_at
FROM gaps g LEFT JOIN gap_reviews r USING (gap_id)
"""  # noqa: S608 - fixed tables and WHERE fragments; values bound  # nosec B608
_SEVERITY_ORDER = "array_position(ARRAY['critical','high','medium','low']::varchar[], g.severity)"


async def list_gaps(
    conn: AsyncConnection[DictRow],
    *,
    status: str | None,
    severity: str | None,
    policy_key: str | None,
    limit: int,
    offset: int,
) -> tuple[list[dict[str, Any]], int]:
    """A page of the tenant's gaps (most severe first), and the total that match."""
    where, params = ["true"], []
    for column, value in ((STATUS, status), ("g.severity", severity), ("g.policy_key", policy_key)):
        if value is not None:
            where.append(f"{column} = %s")
            params.append(value)
    clause = " AND ".join(where)
    rows = await (
        await conn.execute(
            f"{_GAP} WHERE {clause} ORDER BY {_SEVERITY_ORDER}, g.policy_key, g.rule_id, "
            "g.location LIMIT %s OFFSET %s",
            [*params, limit, offset],
        )
    ).fetchall()
    counted = await (
        await conn.execute(
            "SELECT count(*) AS total FROM gaps g LEFT JOIN gap_reviews r USING (gap_id) "  # noqa: S608 - fixed tables and WHERE fragments; values bound  # nosec B608
            f"WHERE {clause}",
            params,
        )
    ).fetchone()
    return rows, int(counted["total"]) if counted else 0


async def find_gap(conn: AsyncConnection[DictRow], gap_id: UUID) -> dict[str, Any] | None:
    return await (await conn.execute(f"{_GAP} WHERE g.gap_id = %s", [gap_id])).fetchone()


async def gap_trend(conn: AsyncConnection[DictRow], runs: int) -> list[dict[str, Any]]:
    """The last `runs` completed runs, oldest first: score, counts by severity, open counts."""
    rows = await (
        await conn.execute(
            "SELECT run_id, scope, completed_at, policies_analysed, gaps_found, score, "
            "gap_severities, open_count, accepted_count, new_count, fixed_count FROM gap_runs "
            "WHERE status = 'completed' ORDER BY completed_at DESC, run_id LIMIT %s",
            [runs],
        )
    ).fetchall()
    return rows[::-1]
