"""The database's security posture, read from the catalog."""

from __future__ import annotations

from typing import Any

import psycopg
import pytest

pytestmark = pytest.mark.postgres


def test_application_role_cannot_bypass_anything(admin_conn: psycopg.Connection[Any]) -> None:
    row = admin_conn.execute(
        "SELECT rolcanlogin, rolsuper, rolbypassrls, rolcreaterole, rolcreatedb, rolinherit "
        "FROM pg_roles WHERE rolname = 'acgs2_app'"
    ).fetchone()
    # NOINHERIT: membership in acgs2_admin grants nothing until an explicit SET LOCAL ROLE.
    assert row == (True, False, False, False, False, False)


def test_application_role_owns_nothing(admin_conn: psycopg.Connection[Any]) -> None:
    owned = admin_conn.execute(
        "SELECT count(*) FROM pg_class c JOIN pg_roles r ON r.oid = c.relowner "
        "WHERE r.rolname = 'acgs2_app'"
    ).fetchone()
    assert owned == (0,)


def test_admin_and_projector_roles_are_not_superusers(admin_conn: psycopg.Connection[Any]) -> None:
    rows = admin_conn.execute(
        "SELECT rolname, rolsuper, rolbypassrls FROM pg_roles "
        "WHERE rolname IN ('acgs2_admin', 'acgs2_projector') ORDER BY rolname"
    ).fetchall()
    assert rows == [("acgs2_admin", False, False), ("acgs2_projector", False, False)]


def test_every_table_with_a_tenant_id_has_forced_rls_with_a_tenant_policy(
    admin_conn: psycopg.Connection[Any],
) -> None:
    tables = admin_conn.execute(
        "SELECT c.relname, c.relrowsecurity, c.relforcerowsecurity FROM pg_class c "
        "JOIN pg_namespace n ON n.oid = c.relnamespace "
        "JOIN pg_attribute a ON a.attrelid = c.oid AND a.attname = 'tenant_id' "
        "WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p') AND NOT c.relispartition"
    ).fetchall()
    names = {t[0] for t in tables}
    assert {
        "tenants",
        "enterprise_integrations",
        "tenant_role_mappings",
        "migration_jobs",
        "tenant_audit_log",
        "policies",
        "agent_messages",
        "deliberation_tasks",
        "governance_events",
        "tenant_claims",
        "integration_data_keys",
        "policy_versions",
        "decision_logs",
        "decision_log_settings",
        "audit_chain_heads",
        "audit_settings",
        "audit_exports",
        "auth_sessions",
        "auth_refresh_tokens",
        "auth_sign_in_requests",
        "auth_saml_assertions",
        "auth_saml_sessions",
        "auth_upstream_tokens",
        "sink_dead_letters",
        "gap_runs",
        "gap_run_findings",
        "gaps",
        "gap_reviews",
        "decision_import_progress",
        "shadow_metrics",
        "shadow_replay_progress",
        "migration_job_failures",
        "webhooks",
        "webhook_deliveries",
        "warehouse_runs",
    } <= names
    for name, enabled, forced in tables:
        assert (name, enabled, forced) == (name, True, True)
        policies = admin_conn.execute(
            "SELECT qual, with_check FROM pg_policies WHERE tablename = %s "
            "AND policyname = 'tenant_isolation_policy'",
            [name],
        ).fetchall()
        assert policies, f"{name} has no tenant_isolation_policy"
        qual, check = policies[0]
        assert "app.current_tenant_id" in (check or "")
        if qual is not None:
            assert qual == check, f"{name}: USING and WITH CHECK differ"


def test_audit_partitions_are_reachable_only_through_the_parent(
    admin_conn: psycopg.Connection[Any],
) -> None:
    partitions = admin_conn.execute(
        "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
        "WHERE i.inhparent = 'tenant_audit_log'::regclass"
    ).fetchall()
    assert len(partitions) >= 5  # default + last month + this month + 3 ahead
    for (name,) in partitions:
        grants = admin_conn.execute(
            "SELECT has_table_privilege('acgs2_app', %s, 'SELECT')", [name]
        ).fetchone()
        assert grants == (False,), name


def test_audit_log_is_partitioned_by_month_with_timestamp_in_the_key(
    admin_conn: psycopg.Connection[Any],
) -> None:
    strategy = admin_conn.execute(
        "SELECT partstrat FROM pg_partitioned_table WHERE partrelid = 'tenant_audit_log'::regclass"
    ).fetchone()
    assert strategy == ("r",)
    key = admin_conn.execute(
        "SELECT array_agg(a.attname ORDER BY a.attname) FROM pg_index i "
        "JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey) "
        "WHERE i.indrelid = 'tenant_audit_log'::regclass AND i.indisprimary"
    ).fetchone()
    assert key == (["audit_id", "timestamp"],)


def test_migrations_are_recorded_and_rerunning_changes_nothing(pg_admin_url: str) -> None:
    from infra.postgres.migrate import available_migrations, migrate  # noqa: PLC0415

    assert migrate(pg_admin_url) == []
    with psycopg.connect(pg_admin_url) as conn:
        recorded = [
            r[0] for r in conn.execute("SELECT version FROM schema_migrations ORDER BY version")
        ]
    assert recorded == [m.version for m in available_migrations()]
