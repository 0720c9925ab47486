"""The one-round-trip tenant read (`Database.fetch_one_as_tenant`) used by the API's hot path:
scoped by RLS exactly like `tenant_session`, leaving nothing behind on the pooled connection."""

from __future__ import annotations

import pytest

from api.bootstrap import System
from commands.context import CommandContext, Principal
from commands.tenants import CreateTenant
from domain.constitution import DEFAULT_CONSTITUTIONAL_HASH
from domain.maci import MaciRole
from domain.tenancy import SYSTEM_TENANT_ID
from infra.postgres.database import Database
from projections.tenants import FIND_TENANT

pytestmark = pytest.mark.postgres

PLATFORM = CommandContext(
    Principal("test", SYSTEM_TENANT_ID, (MaciRole.EXECUTIVE,)), DEFAULT_CONSTITUTIONAL_HASH
)


async def test_reads_only_the_tenants_own_rows_and_leaves_no_setting(
    system: System, unique: str
) -> None:
    a = system.tenants.create(
        PLATFORM, CreateTenant(f"Read A {unique}", f"ra-{unique}", "a@ra.example.com")
    )
    b = system.tenants.create(
        PLATFORM, CreateTenant(f"Read B {unique}", f"rb-{unique}", "b@rb.example.com")
    )
    system.runner("tenants").catch_up()
    database = Database(system.app_conninfo, pool_size=1)
    await database.open()
    try:
        own = await database.fetch_one_as_tenant(a.id, FIND_TENANT, [a.id])
        assert own is not None
        assert own["tenant_slug"] == f"ra-{unique}"
        assert await database.fetch_one_as_tenant(a.id, FIND_TENANT, [b.id]) is None
        async with database.pool.connection() as conn:  # the pool's only connection
            cur = await conn.execute(
                "SELECT coalesce(current_setting('app.current_tenant_id', true), '') AS t"
            )
            row = await cur.fetchone()
            assert row == {"t": ""}
            cur = await conn.execute("SELECT count(*) AS n FROM tenants")
            assert await cur.fetchone() == {"n": 0}  # no tenant set: fail closed
        hostile = "x'); DROP TABLE tenants; --"
        echoed = await database.fetch_one_as_tenant(a.id, "SELECT %s AS v", [hostile])
        assert echoed == {"v": hostile}
    finally:
        await database.close()
