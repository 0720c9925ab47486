"""The warehouse integrations to run and the ledger of their runs (migration 0023), as the
projector role (it sees every tenant's rows; every statement names the integration)."""

from __future__ import annotations

import threading
from typing import Any
from uuid import UUID

import psycopg
from psycopg.rows import dict_row

from infra.postgres.sink_store import ConfiguredSink

_FINISHED = """
INSERT INTO warehouse_runs AS r (tenant_id, integration_id, watermark, rows_loaded, runs,
    last_run_at, last_success_at, last_error, last_error_at)
VALUES (%(tenant)s, %(id)s, %(watermark)s, %(rows)s, 1, now(),
    CASE WHEN %(error)s::text IS NULL THEN now() END, %(error)s,
    CASE WHEN %(error)s::text IS NOT NULL THEN now() END)
ON CONFLICT (integration_id) DO UPDATE SET
    watermark = greatest(r.watermark, EXCLUDED.watermark),
    rows_loaded = r.rows_loaded + EXCLUDED.rows_loaded,
    runs = r.runs + 1,
    last_run_at = now(),
    last_success_at = coalesce(EXCLUDED.last_success_at, r.last_success_at),
    last_error = EXCLUDED.last_error,
    last_error_at = coalesce(EXCLUDED.last_error_at, r.last_error_at)
"""
_RUN = """
SELECT watermark, rows_loaded, runs, last_run_at, last_success_at, last_error, last_error_at
FROM warehouse_runs WHERE tenant_id = %s AND integration_id = %s
"""
_WAREHOUSES = """
SELECT integration_id, tenant_id, version FROM enterprise_integrations
WHERE integration_type = 'data_warehouse' AND enabled AND archived_at IS NULL ORDER BY created_at
"""
_HEAD = "SELECT coalesce(max(notification_id), 0) FROM governance_events"


class WarehouseRuns:
    def __init__(self, conninfo: str) -> None:
        self._conninfo = conninfo
        self._lock = threading.Lock()
        self._conn: psycopg.Connection[Any] | None = None

    def _connection(self) -> psycopg.Connection[Any]:
        if self._conn is None or self._conn.closed:
            self._conn = psycopg.connect(self._conninfo, autocommit=True)
        return self._conn

    def _execute(self, sql: str, params: Any = ()) -> list[Any]:
        with self._lock:
            try:
                cur = self._connection().execute(sql, params)
            except psycopg.OperationalError:
                self.close()
                raise
            return cur.fetchall() if cur.description else []

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def configured(self) -> list[ConfiguredSink]:
        """Every enabled warehouse integration, with its version (a new one restarts it)."""
        return [
            ConfiguredSink(UUID(str(i)), UUID(str(t)), int(v))
            for i, t, v in self._execute(_WAREHOUSES)
        ]

    def finished(
        self,
        owner: UUID,
        integration_id: UUID,
        *,
        watermark: int,
        rows: int,
        error: str | None,
    ) -> None:
        self._execute(
            _FINISHED,
            {
                "tenant": owner,
                "id": integration_id,
                "watermark": watermark,
                "rows": rows,
                "error": error,
            },
        )

    def last_run(self, owner: UUID, integration_id: UUID) -> dict[str, Any] | None:
        with self._lock:
            cur = self._connection().cursor(row_factory=dict_row)
            row = cur.execute(_RUN, [owner, integration_id]).fetchone()
        return dict(row) if row else None

    def head(self) -> int:
        rows = self._execute(_HEAD)
        return int(rows[0][0]) if rows else 0
