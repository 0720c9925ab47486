"""Row-level security between tenants."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any
from uuid import UUID, uuid4

import psycopg
import pytest
from psycopg_pool import ConnectionPool

from api.bootstrap import System
from domain.tenant.aggregate import Tenant
from tests.integration.spine.support import catch_up

pytestmark = pytest.mark.postgres


def insert_policy(as_tenant: Callable[..., Any], tenant: UUID, name: str) -> UUID:
    with as_tenant(tenant) as cur:
        row = cur.execute(
            "INSERT INTO policies (name) VALUES (%s) RETURNING policy_id", [name]
        ).fetchone()
    return UUID(str(row[0]))


def test_tenant_a_cannot_read_tenant_b_policies(
    create_tenant: Callable[..., Tenant], as_tenant: Callable[..., Any]
) -> None:
    a, b = create_tenant(), create_tenant()
    insert_policy(as_tenant, a.id, "a-only")
    b_policy = insert_policy(as_tenant, b.id, "b-only")
    with as_tenant(a.id) as cur:
        names = {r[0] for r in cur.execute("SELECT name FROM policies WHERE tenant_id IS NOT NULL")}
        by_id = cur.execute("SELECT 1 FROM policies WHERE policy_id = %s", [b_policy]).fetchall()
    assert names == {"a-only"}
    assert by_id == []


def test_tenant_a_cannot_update_or_delete_tenant_b_rows(
    create_tenant: Callable[..., Tenant], as_tenant: Callable[..., Any]
) -> None:
    a, b = create_tenant(), create_tenant()
    b_policy = insert_policy(as_tenant, b.id, "b-policy")
    with as_tenant(a.id) as cur:
        updated = cur.execute(
            "UPDATE policies SET name = 'stolen' WHERE policy_id = %s", [b_policy]
        ).rowcount
        deleted = cur.execute("DELETE FROM policies WHERE policy_id = %s", [b_policy]).rowcount
    assert (updated, deleted) == (0, 0)
    with as_tenant(b.id) as cur:
        assert cur.execute(
            "SELECT name FROM policies WHERE policy_id = %s", [b_policy]
        ).fetchone() == ("b-policy",)


def test_tenant_a_cannot_write_rows_into_tenant_b(
    create_tenant: Callable[..., Tenant], as_tenant: Callable[..., Any]
) -> None:
    a, b = create_tenant(), create_tenant()
    with pytest.raises(psycopg.errors.InsufficientPrivilege), as_tenant(a.id) as cur:
        cur.execute("INSERT INTO agent_messages (tenant_id) VALUES (%s)", [b.id])


def test_tenant_a_cannot_see_tenant_b_integrations_nor_write_read_models(
    create_tenant: Callable[..., Tenant],
    as_tenant: Callable[..., Any],
    admin_conn: Any,
) -> None:
    a, b = create_tenant(), create_tenant()
    admin_conn.execute(
        "INSERT INTO enterprise_integrations (tenant_id, integration_type, integration_name, "
        "config_encrypted, config_encryption_key_id) VALUES (%s, 'ldap', 'corp', 'x', 'k')",
        [b.id],
    )
    with as_tenant(a.id) as cur:
        assert cur.execute(
            "SELECT count(*) FROM enterprise_integrations WHERE tenant_id = %s", [b.id]
        ).fetchone() == (0,)
    with pytest.raises(psycopg.errors.InsufficientPrivilege), as_tenant(a.id) as cur:
        cur.execute(
            "UPDATE enterprise_integrations SET enabled = false WHERE tenant_id = %s", [b.id]
        )


def test_tenant_a_cannot_see_tenant_b_audit_log(
    system: System, create_tenant: Callable[..., Tenant], as_tenant: Callable[..., Any]
) -> None:
    a, b = create_tenant(), create_tenant()
    catch_up(system)
    with as_tenant(a.id) as cur:
        tenants_seen = {
            r[0] for r in cur.execute("SELECT DISTINCT tenant_id FROM tenant_audit_log")
        }
        tenant_rows = cur.execute("SELECT tenant_id FROM tenants").fetchall()
    assert tenants_seen == {a.id}
    assert tenant_rows == [(a.id,)]
    with as_tenant(b.id) as cur:
        assert cur.execute("SELECT count(*) FROM tenant_audit_log").fetchone()[0] >= 1


def test_no_tenant_set_sees_zero_rows_and_no_error(
    create_tenant: Callable[..., Tenant], as_tenant: Callable[..., Any]
) -> None:
    create_tenant()
    with as_tenant(None) as cur:
        for table in (
            "tenants",
            "tenant_audit_log",
            "governance_events",
            "agent_messages",
            "deliberation_tasks",
            "enterprise_integrations",
            "tenant_claims",
        ):
            assert cur.execute(f"SELECT count(*) FROM {table}").fetchone() == (0,), table


def test_writes_without_a_tenant_are_refused(as_tenant: Callable[..., Any]) -> None:
    with pytest.raises(psycopg.errors.InsufficientPrivilege), as_tenant(None) as cur:
        cur.execute("INSERT INTO agent_messages DEFAULT VALUES")


def test_system_wide_policies_are_readable_by_every_tenant_but_writable_by_none(
    create_tenant: Callable[..., Tenant],
    as_tenant: Callable[..., Any],
    admin_conn: Any,
) -> None:
    name = f"global-{uuid4().hex[:8]}"
    admin_conn.execute(
        "INSERT INTO policies (name, tenant_id, created_at) VALUES (%s, NULL, '2025-12-01')", [name]
    )
    a = create_tenant()
    with as_tenant(a.id) as cur:
        assert cur.execute("SELECT count(*) FROM policies WHERE name = %s", [name]).fetchone() == (
            1,
        )
        assert cur.execute("UPDATE policies SET rego = 'x' WHERE name = %s", [name]).rowcount == 0


def test_admin_role_reads_across_tenants(
    system: System, create_tenant: Callable[..., Tenant]
) -> None:
    a, b = create_tenant(), create_tenant()
    catch_up(system)
    with psycopg.connect(system.app_conninfo) as conn, conn.transaction():
        conn.execute("SET LOCAL ROLE acgs2_admin")
        seen = {r[0] for r in conn.execute("SELECT tenant_id FROM tenants")}
    assert {a.id, b.id} <= seen


def test_pooled_connection_reused_across_tenants_leaks_nothing(
    system: System,
    create_tenant: Callable[..., Tenant],
    as_tenant: Callable[..., Any],
) -> None:
    a = create_tenant()
    insert_policy(as_tenant, a.id, "pooled")
    with ConnectionPool(system.app_conninfo, min_size=1, max_size=1, open=True) as pool:
        with pool.connection() as conn, conn.transaction():
            conn.execute("SELECT set_config('app.current_tenant_id', %s, true)", [str(a.id)])
            backend = conn.info.backend_pid
            assert conn.execute(
                "SELECT count(*) FROM policies WHERE tenant_id IS NOT NULL"
            ).fetchone() == (1,)
        with pool.connection() as conn:
            assert conn.info.backend_pid == backend
            assert conn.execute(
                "SELECT current_setting('app.current_tenant_id', true)"
            ).fetchone() in {("",), (None,)}
            assert conn.execute(
                "SELECT count(*) FROM policies WHERE tenant_id IS NOT NULL"
            ).fetchone() == (0,)


def test_concurrent_queries_from_many_tenants_each_see_only_their_own(
    system: System,
    create_tenant: Callable[..., Tenant],
    as_tenant: Callable[..., Any],
) -> None:
    tenants = [create_tenant() for _ in range(6)]
    for t in tenants:
        for i in range(3):
            insert_policy(as_tenant, t.id, f"{t.tenant_slug}-{i}")
    errors: list[str] = []
    with ConnectionPool(system.app_conninfo, min_size=3, max_size=3, open=True) as pool:

        def worker(tenant: Tenant) -> None:
            for _ in range(40):
                with pool.connection() as conn, conn.transaction():
                    conn.execute(
                        "SELECT set_config('app.current_tenant_id', %s, true)", [str(tenant.id)]
                    )
                    owners = {
                        r[0]
                        for r in conn.execute(
                            "SELECT tenant_id FROM policies WHERE tenant_id IS NOT NULL"
                        )
                    }
                    if owners != {tenant.id}:
                        errors.append(f"{tenant.tenant_slug} saw {owners}")

        threads = [threading.Thread(target=worker, args=(t,)) for t in tenants]
        for th in threads:
            th.start()
        for th in threads:
            th.join()
    assert errors == []
