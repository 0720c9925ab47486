"""Connections for the service: the application role for queries and commands, the projector role
for projection runners, and tenant-scoped transactions."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any
from uuid import UUID

from psycopg import AsyncClientCursor, AsyncConnection
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from psycopg.rows import DictRow, dict_row
from psycopg_pool import AsyncConnectionPool

APP_ROLE = "acgs2_app"
ADMIN_ROLE = "acgs2_admin"
PROJECTOR_ROLE = "acgs2_projector"
SET_TENANT = "SELECT set_config('app.current_tenant_id', %s, true)"
# A transaction whose commit need not wait for its flush to disk: for writes followed, before
# the caller answers anyone, by a synchronous commit, which flushes the WAL up to itself and so
# this commit too (PostgreSQL writes commit records in order).
NO_FLUSH = "SELECT set_config('synchronous_commit', 'off', true)"
# How long a request waits for a pooled connection before it is refused (503 through
# infra.postgres.outage): while the database is down no connection comes, and a request must
# be answered, not held for the pool's default 30 s.
POOL_WAIT_SECONDS = 3.0


def role_conninfo(admin_url: str, role: str, password: str | None = None) -> str:
    """The connection string of `admin_url` with another login role."""
    overrides: dict[str, Any] = {"user": role}
    if password is not None:
        overrides["password"] = password
    elif "password" in conninfo_to_dict(admin_url):
        overrides["password"] = ""
    return make_conninfo(admin_url, **overrides)


class Database:
    """An async pool of application-role connections; every transaction is tenant-scoped."""

    def __init__(self, conninfo: str, pool_size: int = 10) -> None:
        self.pool: AsyncConnectionPool[AsyncConnection[DictRow]] = AsyncConnectionPool(
            conninfo,
            min_size=min(2, pool_size),
            max_size=pool_size,
            timeout=POOL_WAIT_SECONDS,
            open=False,
            kwargs={"row_factory": dict_row, "autocommit": True, "prepare_threshold": 1},
            connection_class=AsyncConnection[DictRow],
        )

    async def open(self) -> None:
        await self.pool.open(wait=True, timeout=30)

    async def close(self) -> None:
        await self.pool.close()

    @asynccontextmanager
    async def tenant_session(
        self, tenant_id: UUID | None
    ) -> AsyncIterator[AsyncConnection[DictRow]]:
        """A transaction that sees exactly one tenant's rows (none when `tenant_id` is None)."""
        async with self.pool.connection() as conn, conn.transaction():
            await conn.execute(SET_TENANT, ["" if tenant_id is None else str(tenant_id)])
            yield conn

    async def fetch_one_as_tenant(
        self, tenant_id: UUID, query: str, params: Sequence[Any]
    ) -> DictRow | None:
        """One row of `query` as `tenant_id` sees it, in one round trip (hot read paths).

        The tenant setting and the query go as one simple-protocol message, which PostgreSQL
        runs as one implicit transaction: `set_config(..., true)` is transaction-local exactly
        as in `tenant_session` and is gone when the message completes. Parameters are bound
        client-side by psycopg (quoted literals), as simple-protocol messages require.
        """
        async with self.pool.connection() as conn:
            cur = AsyncClientCursor(conn, row_factory=dict_row)
            statement = f"{SET_TENANT}; {query}"
            await cur.execute(statement, [str(tenant_id), *params])
            cur.nextset()
            return await cur.fetchone()

    async def fetch_sets(
        self, tenant_id: UUID | None, statements: Sequence[tuple[str, Sequence[Any]]]
    ) -> list[list[DictRow]]:
        """The rows of each statement, run in one round trip as `tenant_id` sees the data, or
        across tenants as acgs2_admin when `tenant_id` is None (platform principals only).

        As in `fetch_one_as_tenant`: one simple-protocol message, one implicit transaction, so
        the tenant setting (or the role) is gone when it completes; parameters are bound
        client-side."""
        scope = f"SET LOCAL ROLE {ADMIN_ROLE}" if tenant_id is None else SET_TENANT
        params: list[Any] = [] if tenant_id is None else [str(tenant_id)]
        sql = [scope]
        for statement, values in statements:
            sql.append(statement)
            params.extend(values)
        async with self.pool.connection() as conn:
            cur = AsyncClientCursor(conn, row_factory=dict_row)
            await cur.execute("; ".join(sql), params)
            results = []
            for _ in statements:
                cur.nextset()
                results.append(await cur.fetchall())
            return results

    @asynccontextmanager
    async def platform_session(self) -> AsyncIterator[AsyncConnection[DictRow]]:
        """A read transaction across tenants, as acgs2_admin; for platform principals only."""
        async with self.pool.connection() as conn, conn.transaction():
            await conn.execute(f"SET LOCAL ROLE {ADMIN_ROLE}")
            yield conn
