"""The tenant-scoped event store: append, conflict, replay, and the aggregate pin."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from uuid import uuid4

import psycopg
import pytest
from eventsourcing.persistence import PersistenceError, StoredEvent

from api.bootstrap import System
from commands.tenants import CreateTenant
from domain.errors import ConcurrentModification, DomainError, NotFound
from domain.events import SYSTEM_ACTOR, EventMeta
from domain.persistence import AggregatePinned, ClaimTaken
from domain.tenancy import acting_for
from domain.tenant.aggregate import Tenant
from tests.integration.spine.support import HASH, PLATFORM

pytestmark = pytest.mark.postgres


def meta(tenant: Tenant) -> EventMeta:
    return EventMeta(tenant.id, SYSTEM_ACTOR, HASH)


def test_appended_events_carry_their_tenant(
    system: System, create_tenant: Callable[..., Tenant], admin_conn: Any
) -> None:
    tenant = create_tenant()
    rows = admin_conn.execute(
        "SELECT tenant_id, originator_version FROM governance_events WHERE originator_id = %s",
        [tenant.id],
    ).fetchall()
    assert rows == [(tenant.id, 1)]


def test_loading_replays_every_event(system: System, create_tenant: Callable[..., Tenant]) -> None:
    tenant = create_tenant()
    system.tenants.update(PLATFORM, tenant.id, {"max_storage_gb": 42, "billing_plan": "free"})
    loaded = system.app.load(tenant.id, tenant.id, Tenant)
    assert (loaded.version, loaded.quotas.max_storage_gb, loaded.billing_plan) == (3, 42, "free")


def test_a_stale_write_is_a_concurrent_modification(
    system: System, create_tenant: Callable[..., Tenant]
) -> None:
    tenant = create_tenant()
    first = system.app.load(tenant.id, tenant.id, Tenant)
    second = system.app.load(tenant.id, tenant.id, Tenant)
    first.suspend(meta(tenant))
    system.app.save_for(tenant.id, first)
    second.deactivate(meta(tenant))
    with pytest.raises(ConcurrentModification):
        system.app.save_for(tenant.id, second)


def test_another_tenants_aggregate_is_not_found(
    system: System, create_tenant: Callable[..., Tenant]
) -> None:
    a, b = create_tenant(), create_tenant()
    with pytest.raises(NotFound):
        system.app.load(b.id, a.id, Tenant)


def test_a_cross_tenant_append_is_refused_and_the_owner_keeps_writing(
    system: System,
    create_tenant: Callable[..., Tenant],
    admin_conn: Any,
) -> None:
    a, b = create_tenant(), create_tenant()
    intruder = system.app.load(a.id, a.id, Tenant)  # as if tenant B had learned A's state
    intruder.suspend(EventMeta(b.id, SYSTEM_ACTOR, HASH))
    with pytest.raises(NotFound):
        system.app.save_for(b.id, intruder)
    owners = admin_conn.execute(
        "SELECT DISTINCT tenant_id FROM governance_events WHERE originator_id = %s", [a.id]
    ).fetchall()
    assert owners == [(a.id,)]
    system.tenants.update(PLATFORM, a.id, {"status": "suspended"})
    assert system.app.load(a.id, a.id, Tenant).version == 2


def test_a_new_aggregate_saved_with_several_events_at_once_passes_the_pin(
    system: System, unique: str
) -> None:
    tenant_id = uuid4()
    tenant = Tenant.register(
        tenant_id=tenant_id,
        name=f"Batch {unique}",
        slug=f"batch-{unique}",
        email="a@b.io",
        meta=EventMeta(tenant_id, SYSTEM_ACTOR, HASH),
    )
    tenant.suspend(EventMeta(tenant_id, SYSTEM_ACTOR, HASH))
    system.app.save_for(tenant_id, tenant)
    assert system.app.load(tenant_id, tenant_id, Tenant).version == 2


def test_stored_events_are_immutable(system: System, create_tenant: Callable[..., Tenant]) -> None:
    tenant = create_tenant()
    with psycopg.connect(system.app_conninfo) as conn, conn.transaction():
        conn.execute("SELECT set_config('app.current_tenant_id', %s, true)", [str(tenant.id)])
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute(
                "UPDATE governance_events SET topic = 'x' WHERE originator_id = %s", [tenant.id]
            )


def test_bad_input_writes_nothing(system: System, admin_conn: Any, unique: str) -> None:
    before = admin_conn.execute("SELECT count(*) FROM governance_events").fetchone()
    bad = [
        CreateTenant("Acme", "Bad_Slug", "a@b.com"),
        CreateTenant("ab", f"ok-{unique}", "a@b.com"),
        CreateTenant("Acme Ltd", f"ok-{unique}", "not-an-email"),
        CreateTenant("Acme Ltd", f"ok-{unique}", "a@b.com", quotas={"max_storage_gb": -1}),
        CreateTenant("Acme Ltd", f"ok-{unique}", "a@b.com", quotas={"unknown_quota": 5}),
    ]
    for command in bad:
        with pytest.raises(DomainError) as err:
            system.tenants.create(PLATFORM, command)
        assert err.value.code in {"VALIDATION_ERROR", "INVALID_TENANT_SLUG"}
    after = admin_conn.execute("SELECT count(*) FROM governance_events").fetchone()
    assert after == before


def test_a_range_of_an_aggregates_events_reads_in_either_order_for_its_tenant_only(
    system: System, create_tenant: Callable[..., Tenant]
) -> None:
    tenant, other = create_tenant(), create_tenant()
    for n in range(3):
        system.tenants.update(PLATFORM, tenant.id, {"max_storage_gb": 40 + n})
    recorder = system.app.recorder

    def versions(**kw: Any) -> list[int]:
        return [e.originator_version for e in recorder.select_events(tenant.id, **kw)]

    with acting_for(tenant.id):
        assert versions(gt=1, lte=3) == [2, 3]
        assert versions(desc=True, limit=2) == [4, 3]
        assert versions() == [1, 2, 3, 4]
    with acting_for(other.id):
        assert versions() == []


def test_a_driver_error_without_a_constraint_is_raised_as_it_is(
    system: System, create_tenant: Callable[..., Tenant], admin_conn: Any
) -> None:
    tenant = create_tenant()
    stored = StoredEvent(tenant.id, 2**63, "domain.tenant.aggregate:Tenant.Suspended", b"{}")
    with acting_for(tenant.id), pytest.raises(PersistenceError) as raised:
        system.app.recorder.insert_events([stored])
    assert not isinstance(raised.value, ClaimTaken | AggregatePinned)
    count = admin_conn.execute(
        "SELECT count(*) FROM governance_events WHERE originator_id = %s", [tenant.id]
    ).fetchone()
    assert count == (1,)
