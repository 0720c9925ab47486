"""Reads the legacy decisions a `decision_log_import` job put in the decision log (`decision_logs`
rows with `origin = 'imported'`), as the application role in a transaction scoped to the tenant,
in keyset order (decided_at, decision_id) so a replay resumes exactly after its checkpoint."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

import psycopg
from psycopg.rows import dict_row

from domain.shadow.comparison import ImportedDecision

_SET_TENANT = "SELECT set_config('app.current_tenant_id', %s, true)"
_FILTER = "tenant_id = %(tenant_id)s AND origin = 'imported'"
_JOB = " AND import_job_id = %(import_job_id)s"
_AFTER = " AND (decided_at, decision_id) > (%(decided_at)s, %(decision_id)s)"
_COLUMNS = "decision_id, decided_at, principal, action, resource, context, allow, latency_ms"


class PostgresImportedDecisions:
    def __init__(self, conninfo: str) -> None:
        self._conninfo = conninfo

    def _query(self, tenant_id: UUID, sql: str, params: dict[str, Any]) -> list[dict[str, Any]]:
        with (
            psycopg.connect(self._conninfo, row_factory=dict_row) as conn,
            conn.transaction(),
        ):
            conn.execute(_SET_TENANT, [str(tenant_id)])
            return conn.execute(sql, params).fetchall()

    def count(self, tenant_id: UUID, import_job_id: UUID | None) -> int:
        where = _FILTER + (_JOB if import_job_id else "")
        rows = self._query(
            tenant_id,
            f"SELECT count(*) AS n FROM decision_logs WHERE {where}",  # noqa: S608 - WHERE from fixed fragments, LIMIT an int; values bound  # nosec B608
            {"tenant_id": tenant_id, "import_job_id": import_job_id},
        )
        return int(rows[0]["n"])

    def page(
        self,
        tenant_id: UUID,
        import_job_id: UUID | None,
        after: tuple[datetime, UUID] | None,
        limit: int,
    ) -> list[ImportedDecision]:
        where = _FILTER + (_JOB if import_job_id else "") + (_AFTER if after else "")
        params: dict[str, Any] = {"tenant_id": tenant_id, "import_job_id": import_job_id}
        if after:
            params.update(decided_at=after[0], decision_id=after[1])
        rows = self._query(
            tenant_id,
            f"SELECT {_COLUMNS} FROM decision_logs WHERE {where} "  # noqa: S608 - WHERE from fixed fragments, LIMIT an int; values bound  # nosec B608
            f"ORDER BY decided_at, decision_id LIMIT {int(limit)}",
            params,
        )
        return [
            ImportedDecision(
                decision_id=row["decision_id"],
                decided_at=row["decided_at"],
                principal=row["principal"],
                action=row["action"] or "",
                resource=row["resource"] or "",
                context=row["context"] if isinstance(row["context"], dict) else {},
                allow=bool(row["allow"]),
                latency_ms=float(row["latency_ms"] or 0.0),
            )
            for row in rows
        ]
