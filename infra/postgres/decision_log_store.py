"""Appends decision records to `decision_logs` (append-only, partitioned by month), as the
projector role, in one transaction per batch: the batch is copied into a temporary table
(COPY, one round trip) and inserted from there, skipping a record already written."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any, Protocol
from uuid import UUID

import psycopg
from psycopg.types.json import Jsonb


class _Policy(Protocol):
    policy_id: UUID
    policy_key: str
    version: int
    system_wide: bool


_COLUMNS = (
    "decision_id, tenant_id, policy_id, policy_key, policy_version, system_wide, input_sha256, "
    "input, allow, deny, obligations, latency_ms, principal, constitutional_hash, decided_at"
)
_STAGE = (
    "CREATE TEMP TABLE IF NOT EXISTS decision_logs_batch "
    "(LIKE decision_logs INCLUDING DEFAULTS) ON COMMIT DELETE ROWS"
)
_COPY = f"COPY decision_logs_batch ({_COLUMNS}) FROM STDIN"
_INSERT = (
    f"INSERT INTO decision_logs ({_COLUMNS}) SELECT {_COLUMNS} FROM decision_logs_batch "  # noqa: S608
    "ON CONFLICT DO NOTHING"
)


class PostgresDecisionLogStore:
    def __init__(self, conninfo: str) -> None:
        self.conninfo = conninfo
        self._conn: psycopg.Connection[Any] | None = None

    def _connection(self) -> psycopg.Connection[Any]:
        if self._conn is None or self._conn.closed:
            self._conn = psycopg.connect(self.conninfo, autocommit=True)
        return self._conn

    def insert(self, records: Sequence[Any]) -> None:
        rows = [
            (
                r.decision_id,
                r.tenant_id,
                r.policy.policy_id,
                r.policy.policy_key,
                r.policy.version,
                r.policy.system_wide,
                r.input_sha256,
                None if r.input is None else Jsonb(r.input),
                r.decision.allow,
                Jsonb(sorted(r.decision.deny)),
                Jsonb([json.loads(item) for item in sorted(r.decision.obligations)]),
                r.latency_ms,
                r.actor.sub,
                r.constitutional_hash,
                r.decided_at,
            )
            for r in records
        ]
        try:
            conn = self._connection()
            with conn.transaction(), conn.cursor() as cur:
                cur.execute(_STAGE)
                with cur.copy(_COPY) as copy:
                    for row in rows:
                        copy.write_row(row)
                cur.execute(_INSERT)
        except psycopg.OperationalError:
            self.close()
            raise

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None
