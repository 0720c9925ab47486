"""Shadow-mode metrics in PostgreSQL (`shadow_metrics`, `shadow_replay_progress`), written and
read as the application role in transactions scoped to the tenant.

Counts are added with one upsert per (epoch, minute) touched, so concurrent API processes add up
and nothing is lost on a restart; the replay of a job writes its checkpoint in the same
transaction as its counts.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from psycopg import Connection
from psycopg.rows import DictRow, dict_row
from psycopg.types.json import Jsonb
from psycopg_pool import ConnectionPool

from domain.shadow.metrics import KINDS, Tally

_SET_TENANT = "SELECT set_config('app.current_tenant_id', %s, true)"
_COUNTS = ", ".join(kind.value for kind in KINDS)
_UPSERT = f"""
INSERT INTO shadow_metrics (tenant_id, epoch, minute, {_COUNTS}, legacy_latency, rego_latency)
VALUES (%(tenant_id)s, %(epoch)s, %(minute)s, {", ".join(f"%({k.value})s" for k in KINDS)},
        %(legacy_latency)s, %(rego_latency)s)
ON CONFLICT (tenant_id, epoch, minute) DO UPDATE SET
    {", ".join(f"{k.value} = shadow_metrics.{k.value} + excluded.{k.value}" for k in KINDS)},
    legacy_latency = shadow_add_counts(shadow_metrics.legacy_latency, excluded.legacy_latency),
    rego_latency = shadow_add_counts(shadow_metrics.rego_latency, excluded.rego_latency)
"""  # noqa: S608 - only the fixed names of the kinds are formatted in  # nosec B608
_SUM = f"""
SELECT {", ".join(f"coalesce(sum({k.value}), 0) AS {k.value}" for k in KINDS)},
       coalesce(shadow_sum_counts(legacy_latency), '{{}}') AS legacy_latency,
       coalesce(shadow_sum_counts(rego_latency), '{{}}') AS rego_latency
FROM shadow_metrics WHERE tenant_id = %(tenant_id)s
"""  # noqa: S608 - only the fixed names of the kinds are formatted in  # nosec B608
_SERIES = """
SELECT date_trunc(%(resolution)s, minute) AS at, sum(agree) AS agree,
       sum(agree + legacy_allow_rego_deny + legacy_deny_rego_allow + rego_error) AS decisions
FROM shadow_metrics WHERE tenant_id = %(tenant_id)s GROUP BY 1 ORDER BY 1 DESC LIMIT %(points)s
"""
RESOLUTIONS = ("minute", "hour", "day")
_PROGRESS = """
INSERT INTO shadow_replay_progress (tenant_id, job_id, checkpoint, processed, summary)
VALUES (%s, %s, %s, %s, %s)
ON CONFLICT (tenant_id, job_id) DO UPDATE SET checkpoint = excluded.checkpoint,
    processed = excluded.processed, summary = excluded.summary, updated_at = now()
"""
_READ_PROGRESS = (
    "SELECT checkpoint, processed, summary FROM shadow_replay_progress "
    "WHERE tenant_id = %s AND job_id = %s"
)


@dataclass(frozen=True)
class ReplayProgress:
    """Where a replay job stands, recorded with the counts it added."""

    job_id: UUID
    checkpoint: Mapping[str, Any]
    processed: int
    summary: Mapping[str, Any]


class ShadowMetricsStore:
    def __init__(self, conninfo: str, max_size: int = 4) -> None:
        self._pool: ConnectionPool[Connection[DictRow]] = ConnectionPool(
            conninfo,
            min_size=1,
            max_size=max_size,
            open=False,
            kwargs={"row_factory": dict_row, "autocommit": True},
            connection_class=Connection[DictRow],
        )
        self._opened = False

    def close(self) -> None:
        if self._opened:
            self._pool.close()
            self._opened = False

    @contextmanager
    def _session(self, tenant_id: UUID) -> Iterator[Connection[DictRow]]:
        if not self._opened:
            self._pool.open(wait=True, timeout=30)
            self._opened = True
        with self._pool.connection() as conn, conn.transaction():
            conn.execute(_SET_TENANT, [str(tenant_id)])
            yield conn

    def add(
        self,
        tenant_id: UUID,
        epoch: int,
        tallies: Mapping[datetime, Tally],
        progress: ReplayProgress | None = None,
    ) -> None:
        """Add the counts of each minute (and record the replay's progress) in one transaction."""
        with self._session(tenant_id) as conn:
            rows = [
                {"tenant_id": tenant_id, "epoch": epoch, "minute": minute, **tally.as_row()}
                for minute, tally in sorted(tallies.items())
                if tally.total
            ]
            if rows:
                with conn.cursor() as cur:
                    cur.executemany(_UPSERT, rows)
            if progress is not None:
                conn.execute(
                    _PROGRESS,
                    [
                        tenant_id,
                        progress.job_id,
                        Jsonb(dict(progress.checkpoint)),
                        progress.processed,
                        Jsonb(dict(progress.summary)),
                    ],
                )

    def tally(self, tenant_id: UUID, epoch: int | None = None) -> Tally:
        """The counts of one epoch, or of all of them."""
        query = _SUM + ("" if epoch is None else " AND epoch = %(epoch)s")
        with self._session(tenant_id) as conn:
            row = conn.execute(query, {"tenant_id": tenant_id, "epoch": epoch}).fetchone()
        assert row is not None
        return Tally.from_row(row)

    def series(
        self, tenant_id: UUID, points: int = 500, resolution: str = "minute"
    ) -> list[tuple[datetime, float, int]]:
        """Agreement per minute, hour or day (the latest `points` with decisions), oldest
        first: (time, agreement rate, decisions)."""
        if resolution not in RESOLUTIONS:
            msg = f"resolution must be one of {RESOLUTIONS}"
            raise ValueError(msg)
        params = {"tenant_id": tenant_id, "points": points, "resolution": resolution}
        with self._session(tenant_id) as conn:
            rows = conn.execute(_SERIES, params).fetchall()
        return [
            (row["at"], int(row["agree"]) / int(row["decisions"]), int(row["decisions"]))
            for row in reversed(rows)
            if row["decisions"]
        ]

    def progress(self, tenant_id: UUID, job_id: UUID) -> ReplayProgress | None:
        with self._session(tenant_id) as conn:
            row = conn.execute(_READ_PROGRESS, [tenant_id, job_id]).fetchone()
        if row is None:
            return None
        return ReplayProgress(job_id, row["checkpoint"], int(row["processed"]), row["summary"])
