"""The gap-analysis tables of migration 0021 and the policy registry's read model, as the
application role inside a session scoped to the tenant (row-level security holds for the job as
for the API): the `GapLedger` of `commands.gap_analysis` and the lookup of `commands.gaps`."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any
from uuid import UUID

import psycopg
from psycopg.types.json import Jsonb

from domain.policy.gaps.catalogue import GapSeverity
from domain.policy.gaps.tracking import (
    GapScope,
    RegisteredVersion,
    RunCounts,
    RunTally,
    TrackedGap,
)
from domain.tenancy import SYSTEM_TENANT_ID
from infra.postgres.database import SET_TENANT

# The tenant's own policies (the system tenant's are the system-wide ones), at the version the
# scope names; retired policies are out of every scope.
_SCOPED = {
    GapScope.ACTIVE: "v.version = p.active_version AND p.status = 'active'",
    GapScope.LATEST: "v.version = p.latest_version AND p.status <> 'retired'",
}
_FROM = (
    "FROM policies p JOIN policy_versions v ON v.policy_id = p.policy_id "
    "WHERE p.policy_key IS NOT NULL AND p.system_wide = %(system)s AND {scope}"
)
# A source shared by several versions of the batch comes once, with the first of them (by key,
# the batch's order, so the first of any source met in the batch is in the batch).
_VERSIONS = (
    "SELECT p.policy_key, v.version, CASE WHEN row_number() OVER (PARTITION BY v.source_md5 "
    "ORDER BY p.policy_key) = 1 THEN v.source END, v.source_format, v.rego, v.source_md5 "
    + _FROM
    + " AND p.policy_key > %(after)s ORDER BY p.policy_key LIMIT %(limit)s"
)
_BEGIN = """
INSERT INTO gap_runs (run_id, scope, policies_total, requested_by)
VALUES (%s, %s, %s, %s) ON CONFLICT (run_id) DO NOTHING
"""
_FINDING = """
INSERT INTO gap_run_findings (run_id, gap_id, rule_id, severity, policy_key, policy_version,
    location, detail)
VALUES (%s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT (run_id, gap_id) DO NOTHING
"""
_TALLY = """
UPDATE gap_runs SET policies_analysed = %(policies_analysed)s, gaps_found = %(gaps_found)s,
    score = %(score)s, gap_severities = %(gap_severities)s, gap_rules = %(gap_rules)s
WHERE run_id = %(run_id)s AND status = 'running'
"""
_OPENED = """
UPDATE gap_run_findings f SET opened = true WHERE f.run_id = %s
AND NOT EXISTS (SELECT 1 FROM gaps g WHERE g.gap_id = f.gap_id AND g.fixed_at IS NULL)
"""
_OPENED_GAPS = """
SELECT gap_id, rule_id, severity, policy_key, policy_version, location, detail
FROM gap_run_findings WHERE run_id = %s AND opened AND severity = %s ORDER BY policy_key, gap_id
"""
_FIX = """
UPDATE gaps SET fixed_at = now(), fixed_in_run = %(run_id)s
WHERE fixed_at IS NULL
AND gap_id NOT IN (SELECT gap_id FROM gap_run_findings WHERE run_id = %(run_id)s)
"""
_TAKE = """
INSERT INTO gaps (gap_id, rule_id, severity, policy_key, policy_version, location, detail,
    first_seen_run, first_seen_at, last_seen_run, last_seen_at)
SELECT gap_id, rule_id, severity, policy_key, policy_version, location, detail,
    run_id, now(), run_id, now()
FROM gap_run_findings WHERE run_id = %(run_id)s
ON CONFLICT (gap_id) DO UPDATE SET severity = EXCLUDED.severity,
    policy_version = EXCLUDED.policy_version, detail = EXCLUDED.detail,
    last_seen_run = EXCLUDED.last_seen_run, last_seen_at = EXCLUDED.last_seen_at,
    fixed_in_run = NULL, fixed_at = NULL
"""
_ACCEPTED = """
SELECT count(*) FROM gap_run_findings f JOIN gap_reviews r USING (gap_id)
WHERE f.run_id = %s AND r.status = 'accepted'
"""
_COMPLETE = """
UPDATE gap_runs SET status = 'completed', completed_at = now(), open_count = %(open)s,
    accepted_count = %(accepted)s, new_count = %(new)s, fixed_count = %(fixed)s
WHERE run_id = %(run_id)s
"""
_COUNTS = (
    "SELECT status, open_count, accepted_count, new_count, fixed_count FROM gap_runs "
    "WHERE run_id = %s"
)


def _owner(tenant_id: UUID) -> dict[str, Any]:
    """The system tenant's policies are the system-wide ones."""
    return {"system": tenant_id == SYSTEM_TENANT_ID}


class PostgresGapLedger:
    """Each call is one transaction on a connection of its own (a job makes a few per batch,
    so nothing is held between batches or after the job)."""

    def __init__(self, conninfo: str) -> None:
        self._conninfo = conninfo

    @contextmanager
    def _tenant(self, tenant_id: UUID) -> Iterator[psycopg.Cursor[Any]]:
        """A transaction that sees only `tenant_id`'s rows."""
        with psycopg.connect(self._conninfo) as conn, conn.transaction(), conn.cursor() as cur:
            cur.execute(SET_TENANT, [str(tenant_id)])
            yield cur

    # --- the registry ---------------------------------------------------------------------------

    def count_versions(self, tenant_id: UUID, scope: GapScope) -> int:
        with self._tenant(tenant_id) as cur:
            sql = "SELECT count(*) " + _FROM.format(scope=_SCOPED[scope])
            row = cur.execute(sql, _owner(tenant_id)).fetchone()
        return int(row[0]) if row else 0

    def versions(
        self, tenant_id: UUID, scope: GapScope, after: str, limit: int
    ) -> list[RegisteredVersion]:
        params = {**_owner(tenant_id), "after": after, "limit": limit}
        with self._tenant(tenant_id) as cur:
            rows = cur.execute(_VERSIONS.format(scope=_SCOPED[scope]), params).fetchall()
        sources = {digest: source for _, _, source, _, _, digest in rows if source is not None}
        return [
            RegisteredVersion(key, version, sources[digest], source_format, rego, digest)
            for key, version, _, source_format, rego, digest in rows
        ]

    # --- runs -----------------------------------------------------------------------------------

    def begin_run(
        self, tenant_id: UUID, run_id: UUID, scope: GapScope, total: int, requested_by: str
    ) -> None:
        with self._tenant(tenant_id) as cur:
            cur.execute(_BEGIN, [run_id, scope.value, total, requested_by[:255]])

    def record(
        self, tenant_id: UUID, run_id: UUID, gaps: Sequence[TrackedGap], tally: RunTally
    ) -> None:
        with self._tenant(tenant_id) as cur:
            cur.executemany(
                _FINDING,
                [
                    (
                        run_id,
                        g.gap_id,
                        g.rule_id,
                        g.severity.value,
                        g.policy_key,
                        g.policy_version,
                        g.location,
                        g.detail,
                    )
                    for g in gaps
                ],
            )
            summary = tally.as_json()
            cur.execute(
                _TALLY,
                {
                    **summary,
                    "gap_severities": Jsonb(summary["gap_severities"]),
                    "gap_rules": Jsonb(summary["gap_rules"]),
                    "run_id": run_id,
                },
            )

    def complete_run(self, tenant_id: UUID, run_id: UUID) -> RunCounts:
        with self._tenant(tenant_id) as cur:
            # One completion at a time per tenant: each sees the gaps the previous one left.
            cur.execute(
                "SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", [f"gaps:{tenant_id}"]
            )
            row = cur.execute(_COUNTS + " FOR UPDATE", [run_id]).fetchone()
            if row is None:
                msg = f"gap run {run_id} was never begun"
                raise LookupError(msg)
            if row[0] == "completed":
                return RunCounts(*row[1:])
            new = cur.execute(_OPENED, [run_id]).rowcount
            fixed = cur.execute(_FIX, {"run_id": run_id}).rowcount
            cur.execute(_TAKE, {"run_id": run_id})
            accepted = _count(cur, _ACCEPTED, [run_id])
            found = _count(cur, "SELECT count(*) FROM gap_run_findings WHERE run_id = %s", [run_id])
            counts = RunCounts(found - accepted, accepted, new, fixed)
            cur.execute(_COMPLETE, {**counts.as_json(), "run_id": run_id})
        return counts

    def opened_gaps(self, tenant_id: UUID, run_id: UUID, severity: GapSeverity) -> list[TrackedGap]:
        with self._tenant(tenant_id) as cur:
            rows = cur.execute(_OPENED_GAPS, [run_id, severity.value]).fetchall()
        return [
            TrackedGap(gap_id, rule, GapSeverity(level), key, version, location, detail)
            for gap_id, rule, level, key, version, location, detail in rows
        ]

    def run_counts(self, tenant_id: UUID, run_id: UUID) -> RunCounts | None:
        with self._tenant(tenant_id) as cur:
            row = cur.execute(_COUNTS, [run_id]).fetchone()
        return RunCounts(*row[1:]) if row is not None and row[0] == "completed" else None


def _count(cur: psycopg.Cursor[Any], sql: str, params: Sequence[Any]) -> int:
    row = cur.execute(sql, params).fetchone()
    return int(row[0]) if row else 0
