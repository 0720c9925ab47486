"""Audit-log export jobs: queued by the API (in the requesting tenant's session), run by the
`audit_exports` background worker, the file kept in `audit_exports.content` until it expires.

A job goes queued -> processing -> completed (or failed); its progress (percent of the rows
counted when it started), the file's SHA-256 and size, and the tenant's chain head at the time
are in its row. A completed file is deleted when `expires_at` passes (status `expired`). The
worker claims jobs with `FOR UPDATE SKIP LOCKED`, so several processes share the queue; a job
left `processing` by a crashed worker is taken up again after `STALE_SECONDS`.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
import tempfile
import threading
import time
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import psycopg
from psycopg import AsyncConnection
from psycopg.types.json import Jsonb

from projections.audit_formats import WRITERS
from projections.audit_queries import AuditFilters, chain_head, count_rows, export_rows

log = logging.getLogger(__name__)
CHANNEL = "audit_exports"
STALE_SECONDS = 600
CHUNK_BYTES = 256 * 1024
STATUS_COLUMNS = (
    "export_id, tenant_id, requested_by, format, filters, status, progress, total_rows, "
    "rows_written, sha256, size_bytes, chain_head, error, created_at, started_at, "
    "completed_at, expires_at"
)


def new_export_id() -> str:
    return "exp_" + secrets.token_hex(12)


async def queue_export(
    conn: AsyncConnection[Any],
    *,
    export_id: str,
    tenant_id: UUID,
    requested_by: str,
    export_format: str,
    filters: AuditFilters,
) -> dict[str, Any]:
    cur = await conn.execute(
        "INSERT INTO audit_exports (export_id, tenant_id, requested_by, format, filters) "  # noqa: S608 - fixed column list; values are bound parameters  # nosec B608
        f"VALUES (%s, %s, %s, %s, %s) RETURNING {STATUS_COLUMNS}",
        [export_id, tenant_id, requested_by, export_format, Jsonb(filters.as_dict())],
    )
    row = await cur.fetchone()
    await conn.execute("SELECT pg_notify(%s, %s)", [CHANNEL, export_id])
    return dict(row) if row else {}


async def export_status(conn: AsyncConnection[Any], export_id: str) -> dict[str, Any] | None:
    cur = await conn.execute(
        f"SELECT {STATUS_COLUMNS} FROM audit_exports WHERE export_id = %s",  # noqa: S608 - fixed column list; values are bound parameters  # nosec B608
        [export_id],
    )
    row = await cur.fetchone()
    return dict(row) if row else None


async def export_chunks(
    conn: AsyncConnection[Any], export_id: str, size: int
) -> AsyncIterator[bytes]:
    """The file of a completed export, `CHUNK_BYTES` at a time (never all of it in memory)."""
    for offset in range(1, size + 1, CHUNK_BYTES):
        cur = await conn.execute(
            "SELECT substring(content FROM %s FOR %s) AS part FROM audit_exports "
            "WHERE export_id = %s",
            [offset, CHUNK_BYTES, export_id],
        )
        row = await cur.fetchone()
        if row is None or row["part"] is None:
            return
        yield bytes(row["part"])


_CLAIM = f"""
UPDATE audit_exports SET status = 'processing', started_at = now(), progress = 0,
    rows_written = 0, error = NULL
WHERE export_id = (
    SELECT export_id FROM audit_exports
    WHERE status = 'queued'
       OR (status = 'processing' AND started_at < now() - make_interval(secs => %s))
    ORDER BY created_at LIMIT 1 FOR UPDATE SKIP LOCKED
)
RETURNING {STATUS_COLUMNS}
"""  # noqa: S608 - fixed column list; values are bound parameters  # nosec B608
_TOTALS = """
SELECT 'by_category' AS kind, event_category AS key, count(*) AS n FROM tenant_audit_log{w}
    AND tenant_id = %s GROUP BY event_category
UNION ALL
SELECT 'by_result', result, count(*) FROM tenant_audit_log{w} AND tenant_id = %s GROUP BY result
"""


class ExportRunner:
    """The `audit_exports` worker: runs queued exports one at a time and expires old files."""

    def __init__(
        self,
        conninfo: str,
        *,
        expire_seconds: float,
        poll_seconds: float = 1.0,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.conninfo = conninfo
        self.expire_seconds = expire_seconds
        self.poll_seconds = poll_seconds
        self.clock = clock

    def run(self, stop: threading.Event) -> None:
        """Wait for jobs (NOTIFY, or every `poll_seconds`) on one connection, run them, and
        expire old files, until `stop` is set."""
        with psycopg.connect(self.conninfo, autocommit=True) as conn:
            conn.execute(f"LISTEN {CHANNEL}")
            while not stop.is_set():
                self.expire(conn)
                if self.step(conn):
                    continue
                for _ in conn.notifies(timeout=self.poll_seconds, stop_after=1):
                    pass

    def expire(self, conn: psycopg.Connection[Any] | None = None) -> int:
        """Delete the files of exports past their expiry; returns how many."""
        if conn is None:
            with psycopg.connect(self.conninfo, autocommit=True) as own:
                return self.expire(own)
        cur = conn.execute(
            "UPDATE audit_exports SET status = 'expired', content = NULL "
            "WHERE status = 'completed' AND expires_at <= %s",
            [self.clock()],
        )
        return cur.rowcount

    def step(self, conn: psycopg.Connection[Any] | None = None) -> bool:
        """Run the next queued export, if any; True when one ran."""
        if conn is None:
            with psycopg.connect(self.conninfo, autocommit=True) as own:
                return self.step(own)
        job = conn.execute(_CLAIM, [STALE_SECONDS], prepare=False).fetchone()
        if job is None:
            return False
        columns = [c.strip() for c in STATUS_COLUMNS.split(",")]
        self.run_job(conn, dict(zip(columns, job, strict=True)))
        return True

    def run_job(self, conn: psycopg.Connection[Any], job: dict[str, Any]) -> None:
        export_id, tenant_id = job["export_id"], job["tenant_id"]
        started = time.perf_counter()
        try:
            filters = AuditFilters.from_dict(job["filters"])
            with conn.cursor() as cur:
                total = count_rows(cur, tenant_id, filters)
                head = chain_head(cur, tenant_id)
                totals = self._totals(cur, tenant_id, filters)
            conn.execute(
                "UPDATE audit_exports SET total_rows = %s, chain_head = %s WHERE export_id = %s",
                [total, Jsonb(head), export_id],
            )
            header = {
                "export_id": export_id,
                "tenant_id": str(tenant_id),
                "format": job["format"],
                "filters": filters.as_dict(),
                "generated_at": self.clock().isoformat(),
                "total_rows": total,
                "totals": totals,
                "chain_head": head,
            }
            last = [time.monotonic()]

            def progress(n: int) -> None:
                if time.monotonic() - last[0] >= 0.5:  # a status update at most twice a second
                    last[0] = time.monotonic()
                    conn.execute(
                        "UPDATE audit_exports SET rows_written = %s, progress = %s "
                        "WHERE export_id = %s",
                        [n, min(99, n * 100 // max(total, 1)), export_id],
                    )

            with tempfile.TemporaryFile() as out, psycopg.connect(self.conninfo) as reader:
                written = WRITERS[job["format"]](
                    export_rows(reader, tenant_id, filters), out, header, progress
                )
                size = out.tell()
                out.seek(0)
                content = out.read()
            digest = hashlib.sha256(content).hexdigest()
            conn.execute(
                "UPDATE audit_exports SET status = 'completed', progress = 100, "
                "rows_written = %s, sha256 = %s, size_bytes = %s, content = %s, "
                "completed_at = %s, expires_at = %s WHERE export_id = %s",
                [
                    written,
                    digest,
                    size,
                    content,
                    self.clock(),
                    self.clock() + timedelta(seconds=self.expire_seconds),
                    export_id,
                ],
            )
            log.info(
                "audit export %s: %d rows, %d bytes in %.2f s",
                export_id,
                written,
                size,
                time.perf_counter() - started,
            )
        except Exception as exc:
            log.exception("audit export %s failed", export_id)
            conn.execute(
                "UPDATE audit_exports SET status = 'failed', error = %s WHERE export_id = %s",
                [f"{type(exc).__name__}", export_id],
            )

    @staticmethod
    def _totals(cur: psycopg.Cursor[Any], tenant_id: UUID, filters: AuditFilters) -> dict[str, Any]:
        where, params = filters.where()
        totals: dict[str, dict[str, int]] = {"by_category": {}, "by_result": {}}
        for kind, key, n in cur.execute(
            _TOTALS.format(w=where), [*params, tenant_id, *params, tenant_id]
        ).fetchall():
            totals[kind][key] = int(n)
        return totals
