"""Wrapped data keys in PostgreSQL (`integration_data_keys`, migration 0008), as the application
role, each statement in a transaction scoped to its tenant (row-level security)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any
from uuid import UUID

import psycopg
from psycopg_pool import ConnectionPool

from infra.keys.envelope import StoredKey
from infra.postgres.database import SET_TENANT


class PostgresDataKeys:
    def __init__(self, conninfo: str, *, max_size: int = 4) -> None:
        self._pool: ConnectionPool[psycopg.Connection[Any]] = ConnectionPool(
            conninfo, min_size=0, max_size=max_size, open=False
        )
        self._opened = False

    def close(self) -> None:
        if self._opened:
            self._pool.close()

    def insert(
        self, tenant_id: UUID, key_id: UUID, provider: str, wrapped: str, kek_version: int
    ) -> None:
        self._run(
            tenant_id,
            "INSERT INTO integration_data_keys (key_id, tenant_id, provider, wrapped_key, "
            "kek_version) VALUES (%s, %s, %s, %s, %s)",
            [key_id, tenant_id, provider, wrapped, kek_version],
        )

    def wrapped(self, tenant_id: UUID, key_id: UUID) -> str | None:
        rows = self._run(
            tenant_id, "SELECT wrapped_key FROM integration_data_keys WHERE key_id = %s", [key_id]
        )
        return str(rows[0][0]) if rows else None

    def of_tenant(self, tenant_id: UUID) -> list[StoredKey]:
        rows = self._run(
            tenant_id,
            "SELECT key_id, wrapped_key, kek_version FROM integration_data_keys "
            "WHERE tenant_id = %s ORDER BY created_at",
            [tenant_id],
        )
        return [StoredKey(UUID(str(r[0])), str(r[1]), int(r[2])) for r in rows]

    def rewrapped(self, tenant_id: UUID, key_id: UUID, wrapped: str, kek_version: int) -> None:
        self._run(
            tenant_id,
            "UPDATE integration_data_keys SET wrapped_key = %s, kek_version = %s, "
            "rewrapped_at = now() WHERE key_id = %s",
            [wrapped, kek_version, key_id],
        )

    def delete(self, tenant_id: UUID, key_id: UUID) -> None:
        self._run(tenant_id, "DELETE FROM integration_data_keys WHERE key_id = %s", [key_id])

    def delete_tenant(self, tenant_id: UUID) -> int:
        rows = self._run(
            tenant_id,
            "DELETE FROM integration_data_keys WHERE tenant_id = %s RETURNING key_id",
            [tenant_id],
        )
        return len(rows)

    def _run(self, tenant_id: UUID, sql: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
        with self._connection() as conn, conn.transaction(), conn.cursor() as cur:
            cur.execute(SET_TENANT, [str(tenant_id)])
            cur.execute(sql, params)
            return list(cur.fetchall()) if cur.description else []

    @contextmanager
    def _connection(self) -> Iterator[psycopg.Connection[Any]]:
        if not self._opened:
            self._pool.open(wait=True, timeout=30)
            self._opened = True
        with self._pool.connection() as conn:
            yield conn
