"""The migration jobs' read models: `migration_jobs` (one row per job: status, counts, lease,
result) and `migration_job_failures` (the items a job could not process), maintained from
MigrationJob events, and their queries.

`estimated_completion` is computed when progress is recorded: started + elapsed x total /
processed, the elapsed time being the progress event's own time, so a replay gives the same rows.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any
from uuid import UUID

from psycopg import AsyncConnection, Cursor
from psycopg.rows import DictRow
from psycopg.types.json import Jsonb

from domain.migration.job import MigrationJob

_CREATE = """
INSERT INTO migration_jobs (job_id, tenant_id, job_type, job_status, source_system,
    source_config, source_filename, constitutional_hash, created_at, updated_at, created_by,
    version)
VALUES (%(job_id)s, %(tenant_id)s, %(job_type)s, 'pending', %(source_system)s,
    %(source_config)s, %(source_filename)s, %(constitutional_hash)s, %(at)s, %(at)s,
    %(created_by)s, %(version)s)
ON CONFLICT (job_id) DO NOTHING
"""
_SET = "UPDATE migration_jobs SET updated_at = %(at)s, version = %(version)s"
_WHERE = " WHERE job_id = %(job_id)s"
_CLAIMED = (
    _SET + ", job_status = 'running', started_at = coalesce(started_at, %(at)s), "
    "lease_owner = %(owner)s, lease_expires_at = %(expires)s, claims = claims + 1" + _WHERE
)
_RENEWED = _SET + ", lease_expires_at = %(expires)s" + _WHERE
_PROGRESSED = (
    _SET + ", total_items = %(total)s, processed_items = %(processed)s, "
    "successful_items = %(successful)s, failed_items = %(failed)s, "
    "estimated_completion = CASE WHEN %(processed)s > 0 AND started_at IS NOT NULL "
    "THEN started_at + (%(at)s - started_at) * (%(total)s::float8 / %(processed)s) END" + _WHERE
)
_COMPLETED = (
    _SET + ", job_status = 'completed', total_items = %(total)s, processed_items = %(processed)s, "
    "successful_items = %(successful)s, failed_items = %(failed)s, "
    "result_summary = %(result_summary)s, completed_at = %(at)s, estimated_completion = %(at)s, "
    "lease_owner = NULL, lease_expires_at = NULL" + _WHERE
)
_FAILED = (
    _SET + ", job_status = 'failed', error_details = %(error_details)s, completed_at = %(at)s, "
    "estimated_completion = NULL, lease_owner = NULL, lease_expires_at = NULL" + _WHERE
)
_CANCELLED = (
    _SET + ", job_status = 'cancelled', cancelled_at = %(at)s, estimated_completion = NULL, "
    "lease_owner = NULL, lease_expires_at = NULL" + _WHERE
)
_FAILURE = """
INSERT INTO migration_job_failures (tenant_id, job_id, seq, item, error, recommendation,
    recorded_at)
VALUES (%s, %s, (SELECT coalesce(max(seq), 0) + 1 FROM migration_job_failures WHERE job_id = %s),
    %s, %s, %s, %s)
ON CONFLICT (job_id, item) DO NOTHING
"""


class MigrationJobsProjection:
    name = "migrations"  # its follower; the worker running the jobs is `migration_jobs`
    tables = ("migration_jobs", "migration_job_failures")

    def apply(self, cur: Cursor[Any], event: Any) -> None:
        if not isinstance(event, MigrationJob.Event):
            return
        base = {"job_id": event.originator_id, "at": event.timestamp}
        base["version"] = event.originator_version
        if isinstance(event, MigrationJob.Created):
            self._created(cur, event, base)
        elif isinstance(event, MigrationJob.Claimed | MigrationJob.LeaseRenewed):
            statement = _CLAIMED if isinstance(event, MigrationJob.Claimed) else _RENEWED
            expires = event.timestamp + timedelta(seconds=event.lease_seconds)
            cur.execute(statement, {**base, "owner": event.owner, "expires": expires})
        elif isinstance(event, MigrationJob.Progressed):
            cur.execute(_PROGRESSED, {**base, **_counts(event)})
            tenant = event.meta["tenant_id"]
            for failure in event.failures:
                cur.execute(
                    _FAILURE,
                    (
                        tenant,
                        event.originator_id,
                        event.originator_id,
                        str(failure.get("item", ""))[:1000],
                        str(failure.get("error", "")),
                        str(failure.get("recommendation", "")),
                        event.timestamp,
                    ),
                )
        elif isinstance(event, MigrationJob.Completed):
            summary = Jsonb(event.result_summary)
            cur.execute(_COMPLETED, {**base, **_counts(event), "result_summary": summary})
        elif isinstance(event, MigrationJob.Failed):
            cur.execute(_FAILED, {**base, "error_details": event.error_details})
        elif isinstance(event, MigrationJob.Cancelled):
            cur.execute(_CANCELLED, base)

    def _created(self, cur: Cursor[Any], event: Any, base: dict[str, Any]) -> None:
        source = event.source or {}
        cur.execute(
            _CREATE,
            {
                **base,
                "tenant_id": event.meta["tenant_id"],
                "job_type": event.job_type,
                "source_system": event.source_system[:255],
                "source_config": Jsonb(event.source_config),
                "source_filename": (str(source["filename"])[:255] if source else None),
                "constitutional_hash": event.meta["constitutional_hash"],
                "created_by": str(event.meta["actor"]["sub"])[:255],
            },
        )


def _counts(event: Any) -> dict[str, int]:
    return {
        "total": event.total,
        "processed": event.processed,
        "successful": event.successful,
        "failed": event.failed,
    }


# --- queries (inside a session scoped to the tenant) -------------------------------------------

JOB_COLUMNS = (
    "job_id, tenant_id, job_type, job_status, source_system, source_config, source_filename, "
    "total_items, processed_items, successful_items, failed_items, result_summary, "
    "error_details, started_at, completed_at, cancelled_at, estimated_completion, created_at, "
    "updated_at, created_by, constitutional_hash"
)


def progress_percentage(processed: int, total: int | None) -> int:
    """floor(processed / total x 100); 0 while the total is unknown (or zero and nothing done),
    100 for a job with nothing to do once done."""
    if not total:
        return 0
    return min(100, processed * 100 // total)


async def list_jobs(
    conn: AsyncConnection[DictRow],
    *,
    status: str | None,
    job_type: str | None,
    limit: int,
    offset: int,
) -> tuple[list[dict[str, Any]], int]:
    """A page of the tenant's jobs, newest first, and the total that match."""
    where, params = ["true"], list[Any]()
    if status is not None:
        where.append("job_status = %s")
        params.append(status)
    if job_type is not None:
        where.append("job_type = %s")
        params.append(job_type)
    clause = " AND ".join(where)
    rows = await (
        await conn.execute(
            f"SELECT {JOB_COLUMNS} FROM migration_jobs WHERE {clause} "  # noqa: S608 - fixed columns and WHERE fragments; values bound  # nosec B608
            "ORDER BY created_at DESC, job_id LIMIT %s OFFSET %s",
            [*params, limit, offset],
        )
    ).fetchall()
    counted = await (
        await conn.execute(f"SELECT count(*) AS total FROM migration_jobs WHERE {clause}", params)  # noqa: S608 - fixed columns and WHERE fragments; values bound  # nosec B608
    ).fetchone()
    return rows, int(counted["total"]) if counted else 0


async def find_job(conn: AsyncConnection[DictRow], job_id: UUID) -> dict[str, Any] | None:
    cur = await conn.execute(
        f"SELECT {JOB_COLUMNS} FROM migration_jobs WHERE job_id = %s",  # noqa: S608 - fixed columns and WHERE fragments; values bound  # nosec B608
        [job_id],
    )
    return await cur.fetchone()


async def job_failures(
    conn: AsyncConnection[DictRow], job_id: UUID, *, limit: int = 1000
) -> list[dict[str, Any]]:
    """The job's failed items in the order they were recorded (at most `limit`)."""
    cur = await conn.execute(
        "SELECT item AS item_id, error, recommendation FROM migration_job_failures "
        "WHERE job_id = %s ORDER BY seq LIMIT %s",
        [job_id, limit],
    )
    return await cur.fetchall()
