"""Projection runners: exactly-once positions, lag, and replay into empty tables."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any
from uuid import UUID, uuid4

import pytest

from api.bootstrap import System
from domain.constitution import DEFAULT_CONSTITUTIONAL_HASH
from domain.events import SYSTEM_ACTOR, EventMeta
from domain.migration.job import MigrationJob
from domain.tenancy import SYSTEM_TENANT_ID
from domain.tenant.aggregate import Tenant
from infra.postgres.projection_runner import ProjectionRunner
from projections.migrations import MigrationJobsProjection
from projections.tenants import TenantsProjection
from tests.integration.spine.support import PLATFORM, catch_up

pytestmark = pytest.mark.postgres

SNAPSHOTS = {
    "tenants": "SELECT * FROM tenants ORDER BY tenant_id",
    # Only the tenants of the history made here (and the system tenant): other tests seed audit
    # rows that bypass the event store (support.seed_audit_rows), which a replay does not
    # rebuild, so their tenants' chains are numbered differently after one.
    "audit_log": "SELECT * FROM tenant_audit_log WHERE tenant_id = ANY(%s) ORDER BY audit_id",
}


def snapshot(admin_conn: Any, name: str, tenants: list[UUID]) -> list[tuple[Any, ...]]:
    params = [[*tenants, SYSTEM_TENANT_ID]] if name == "audit_log" else []
    return [tuple(r) for r in admin_conn.execute(SNAPSHOTS[name], params).fetchall()]


def make_history(system: System, create_tenant: Callable[..., Tenant]) -> list[UUID]:
    a, b, c = create_tenant(), create_tenant(), create_tenant()
    system.tenants.update(PLATFORM, a.id, {"max_storage_gb": 77, "admin_email": "new@a.com"})
    system.tenants.update(PLATFORM, b.id, {"status": "suspended"})
    system.tenants.deactivate(PLATFORM, c.id, immediate=True)
    return [a.id, b.id, c.id]


@pytest.mark.parametrize("name", ["tenants", "audit_log"])
def test_replay_into_empty_tables_gives_identical_rows(
    system: System,
    create_tenant: Callable[..., Tenant],
    admin_conn: Any,
    name: str,
) -> None:
    tenants = make_history(system, create_tenant)
    catch_up(system)
    before = snapshot(admin_conn, name, tenants)
    runner = system.runner(name)
    runner.reset()
    assert admin_conn.execute(f"SELECT count(*) FROM {runner.projection.tables[0]}").fetchone() == (
        0,
    )
    applied = runner.catch_up()
    assert applied > 0
    assert snapshot(admin_conn, name, tenants) == before


def test_a_caught_up_runner_applies_nothing_twice(
    system: System, create_tenant: Callable[..., Tenant], admin_conn: Any
) -> None:
    create_tenant()
    catch_up(system)
    rows = admin_conn.execute("SELECT count(*) FROM tenant_audit_log").fetchone()
    assert system.runner("audit_log").catch_up() == 0
    assert admin_conn.execute("SELECT count(*) FROM tenant_audit_log").fetchone() == rows


class CountingProjection:
    """A projection of its own name, so no background runner of the shared system moves it."""

    tables: tuple[str, ...] = ()

    def __init__(self, name: str) -> None:
        self.name = name
        self.seen = 0

    def apply(self, cur: Any, event: Any) -> None:
        self.seen += 1


def test_status_reports_lag_and_then_none(
    system: System, create_tenant: Callable[..., Tenant], admin_conn: Any, unique: str
) -> None:
    probe = ProjectionRunner(
        system.projector_conninfo, CountingProjection(f"probe_{unique}"), system.app.mapper
    )
    try:
        probe.position()  # registers the projection at position 0
        create_tenant()
        behind = {s["name"]: s for s in system.projection_status()}[probe.name]
        assert behind["events_behind"] == behind["head"] > 0
        assert behind["seconds_behind"] > 0
        applied = probe.catch_up()
        # Notification ids may have gaps (a refused insert consumes one), so `events_behind`
        # is an upper bound on the events still to apply.
        assert 0 < applied <= behind["events_behind"]
        assert probe.projection.seen == applied
        status = {s["name"]: s for s in system.projection_status()}[probe.name]
        assert status["events_behind"] == 0
        assert status["seconds_behind"] == 0.0
    finally:
        probe.close()
        admin_conn.execute("DELETE FROM projection_positions WHERE name = %s", [probe.name])


def test_tenant_row_matches_the_aggregate(
    system: System, create_tenant: Callable[..., Tenant], admin_conn: Any
) -> None:
    tenant = create_tenant()
    update = system.tenants.update(
        PLATFORM, tenant.id, {"max_requests_per_minute": 5000, "billing_plan": "enterprise"}
    )
    catch_up(system)
    row = admin_conn.execute(
        "SELECT tenant_slug, status, max_requests_per_minute, billing_plan, version, updated_at "
        "FROM tenants WHERE tenant_id = %s",
        [tenant.id],
    ).fetchone()
    assert row == (
        tenant.tenant_slug,
        "active",
        5000,
        "enterprise",
        update.tenant.version,
        update.tenant.modified_on,
    )


def test_audit_rows_carry_actor_hash_and_event_time(
    system: System, create_tenant: Callable[..., Tenant], admin_conn: Any
) -> None:
    tenant = create_tenant()
    catch_up(system)
    row = admin_conn.execute(
        "SELECT event_type, event_category, actor_id, action, target_resource, result, "
        "constitutional_hash, timestamp FROM tenant_audit_log WHERE tenant_id = %s",
        [tenant.id],
    ).fetchone()
    assert row == (
        "tenant.created",
        "admin",
        "operator",
        "create_tenant",
        f"tenant/{tenant.id}",
        "success",
        DEFAULT_CONSTITUTIONAL_HASH,
        tenant.created_on,
    )


def test_readiness_counts_only_the_projections_this_system_runs(
    system: System, create_tenant: Callable[..., Tenant], admin_conn: Any, unique: str
) -> None:
    stranger = f"retired_{unique}"
    admin_conn.execute(
        "INSERT INTO projection_positions (name, position) VALUES (%s, 0)", [stranger]
    )
    try:
        create_tenant()
        assert stranger in {s["name"] for s in system.projection_status()}
        own = {s["name"] for s in system.projection_status(own_only=True)}
        assert own == {r.name for r in system.runners}
    finally:
        admin_conn.execute("DELETE FROM projection_positions WHERE name = %s", [stranger])


def _tenant() -> Tenant:
    tenant_id = uuid4()
    slug = f"noted-{tenant_id.hex[:10]}"
    meta = EventMeta(tenant_id, SYSTEM_ACTOR, DEFAULT_CONSTITUTIONAL_HASH)
    return Tenant.register(tenant_id=tenant_id, name=slug, slug=slug, email="a@b.co", meta=meta)


def _job() -> MigrationJob:
    meta = EventMeta(uuid4(), SYSTEM_ACTOR, DEFAULT_CONSTITUTIONAL_HASH)
    return MigrationJob.create(
        job_id=uuid4(),
        job_type="policy_conversion",
        source_system="Legacy",
        source_config={},
        parameters={},
        source=None,
        meta=meta,
    )


class _TenantNoted(Tenant.Event):
    """An event of the tenant that no read-model column stands for."""


class _JobNoted(MigrationJob.Event):
    """An event of a migration job that no read-model column stands for."""


@pytest.mark.parametrize(
    ("projection", "aggregate", "noted", "table", "key"),
    [
        (TenantsProjection(), _tenant, _TenantNoted, "tenants", "tenant_id"),
        (MigrationJobsProjection(), _job, _JobNoted, "migration_jobs", "job_id"),
    ],
)
def test_an_event_without_a_column_leaves_the_row_as_it_was(
    admin_conn: Any,
    projection: Any,
    aggregate: Callable[[], Any],
    noted: type[Any],
    table: str,
    key: str,
) -> None:
    made = aggregate()
    [created] = made.collect_events()
    event = noted(
        originator_id=made.id,
        originator_version=2,
        timestamp=created.timestamp + timedelta(seconds=1),
        meta=created.meta,
    )
    select = f"SELECT * FROM {table} WHERE {key} = %s"
    with admin_conn.transaction(force_rollback=True), admin_conn.cursor() as cur:
        projection.apply(cur, created)
        before = cur.execute(select, [made.id]).fetchall()
        projection.apply(cur, event)
        assert cur.execute(select, [made.id]).fetchall() == before
        assert len(before) == 1
