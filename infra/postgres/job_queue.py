"""The migration-job queue: which jobs a worker may try to claim, read from the jobs' read model
as the projector role (across tenants). The claim itself is the aggregate's, so a job this shows
that another worker has just claimed is only a claim that loses."""

from __future__ import annotations

from uuid import UUID

import psycopg

_CLAIMABLE = """
SELECT j.tenant_id, j.job_id FROM migration_jobs j
WHERE (j.job_status = 'pending'
       OR (j.job_status = 'running' AND j.lease_expires_at <= now()))
  AND (SELECT count(*) FROM migration_jobs r
       WHERE r.tenant_id = j.tenant_id AND r.job_status = 'running'
         AND r.lease_expires_at > now()) < %(cap)s
ORDER BY j.created_at, j.job_id
LIMIT %(limit)s
"""


class PostgresJobQueue:
    def __init__(self, conninfo: str) -> None:
        self._conninfo = conninfo

    def claimable(self, *, per_tenant_cap: int, limit: int) -> list[tuple[UUID, UUID]]:
        with psycopg.connect(self._conninfo, autocommit=True) as conn:
            rows = conn.execute(_CLAIMABLE, {"cap": per_tenant_cap, "limit": limit}).fetchall()
        return [(row[0], row[1]) for row in rows]
