"""Tenant commands on the in-memory event store (which keeps the PostgreSQL recorder's claims,
tenant pinning and tenant-scoped reads): uniqueness, lifecycle and authorization, no SQL. The
same rules against PostgreSQL, and what only it can show (concurrent saves, audit rows), are in
tests/integration/spine/test_tenant_commands.py."""

from __future__ import annotations

from itertools import count

import pytest

from commands.application import GovernanceApplication
from commands.context import CommandContext, Principal
from commands.tenants import CreateTenant, TenantCommands
from domain.constitution import DEFAULT_CONSTITUTIONAL_HASH
from domain.errors import (
    ConcurrentModification,
    Forbidden,
    InvalidStateTransition,
    NotFound,
    TenantNameTaken,
    TenantSlugTaken,
    ValidationFailed,
)
from domain.events import Actor, EventMeta
from domain.maci import MaciRole
from domain.tenancy import SYSTEM_TENANT_ID
from domain.tenant.aggregate import Tenant
from domain.tenant.values import TenantStatus

HASH = DEFAULT_CONSTITUTIONAL_HASH
PLATFORM = CommandContext(Principal("operator", SYSTEM_TENANT_ID, (MaciRole.EXECUTIVE,)), HASH)
MEMORY = {"PERSISTENCE_MODULE": "infra.memory.event_store:InMemoryFactory"}
_numbers = count()


@pytest.fixture
def app() -> GovernanceApplication:
    return GovernanceApplication(env=MEMORY)


@pytest.fixture
def tenants(app: GovernanceApplication) -> TenantCommands:
    commands = TenantCommands(app, HASH)
    commands.bootstrap_system_tenant()
    return commands


def create(tenants: TenantCommands, name: str | None = None, slug: str | None = None) -> Tenant:
    n = next(_numbers)
    return tenants.create(
        PLATFORM, CreateTenant(name or f"Tenant {n}", slug or f"tenant-{n}", "a@example.com")
    )


def test_duplicate_slug_is_taken(tenants: TenantCommands) -> None:
    create(tenants, slug="acme")
    with pytest.raises(TenantSlugTaken, match="tenant slug is already taken"):
        create(tenants, slug="acme")


def test_duplicate_name_is_taken_case_insensitively(tenants: TenantCommands) -> None:
    create(tenants, name="Globex")
    with pytest.raises(TenantNameTaken, match="tenant name is already taken"):
        create(tenants, name="GLOBEX")


def test_a_refused_create_claims_nothing(tenants: TenantCommands) -> None:
    create(tenants, name="Initech", slug="initech")
    with pytest.raises(TenantSlugTaken):
        create(tenants, name="Hooli", slug="initech")
    assert create(tenants, name="Hooli").tenant_name == "Hooli"  # its name was not claimed


def test_renaming_frees_the_old_name(tenants: TenantCommands) -> None:
    first = create(tenants, name="Old")
    tenants.update(PLATFORM, first.id, {"tenant_name": "New"})
    assert create(tenants, name="Old").tenant_name == "Old"
    with pytest.raises(TenantNameTaken):
        create(tenants, name="new")


def test_immediate_purge_frees_the_slug_and_the_tenant_cannot_come_back(
    tenants: TenantCommands, app: GovernanceApplication
) -> None:
    tenant = create(tenants, name="Gone", slug="gone")
    purged = tenants.deactivate(PLATFORM, tenant.id, immediate=True)
    assert purged.status is TenantStatus.PURGED
    assert app.load(tenant.id, tenant.id, Tenant).status is TenantStatus.PURGED
    with pytest.raises(NotFound):
        tenants.reactivate(PLATFORM, tenant.id)
    assert create(tenants, name="Gone", slug="gone").tenant_slug == "gone"


def test_soft_delete_then_reactivate(tenants: TenantCommands) -> None:
    tenant = create(tenants)
    deactivated = tenants.deactivate(PLATFORM, tenant.id)
    assert deactivated.status is TenantStatus.DEACTIVATED
    assert deactivated.data_purge_scheduled is not None
    with pytest.raises(InvalidStateTransition):
        tenants.update(PLATFORM, tenant.id, {"tenant_name": "Renamed while deactivated"})
    assert tenants.reactivate(PLATFORM, tenant.id).status is TenantStatus.ACTIVE


def test_the_system_tenant_cannot_be_deactivated(tenants: TenantCommands) -> None:
    with pytest.raises(Forbidden):
        tenants.deactivate(PLATFORM, SYSTEM_TENANT_ID)


def test_tenant_admin_may_rename_but_not_raise_own_quotas(tenants: TenantCommands) -> None:
    tenant = create(tenants)
    admin = CommandContext(Principal("alice", tenant.id, (MaciRole.EXECUTIVE,)), HASH)
    assert tenants.update(admin, tenant.id, {"tenant_name": "Self"}).updated_fields == [
        "tenant_name"
    ]
    with pytest.raises(Forbidden):
        tenants.update(admin, tenant.id, {"max_requests_per_minute": 999_999})


def test_other_tenants_admin_gets_not_found(tenants: TenantCommands) -> None:
    a, b = create(tenants), create(tenants)
    intruder = CommandContext(Principal("mallory", b.id, (MaciRole.EXECUTIVE,)), HASH)
    with pytest.raises(NotFound):
        tenants.update(intruder, a.id, {"tenant_name": "Hijacked"})


def test_an_aggregate_of_another_tenant_cannot_be_read_or_appended_to(
    tenants: TenantCommands, app: GovernanceApplication
) -> None:
    a, b = create(tenants), create(tenants)
    with pytest.raises(NotFound):
        app.load(b.id, a.id, Tenant)  # b cannot read a's events
    victim = app.load(a.id, a.id, Tenant)
    victim.suspend(EventMeta(b.id, Actor("mallory", (MaciRole.EXECUTIVE,)), HASH))
    with pytest.raises(NotFound):
        app.save_for(b.id, victim)  # knowing the id is not enough to append as b
    assert app.load(a.id, a.id, Tenant).status is TenantStatus.ACTIVE


def test_saving_a_version_twice_is_a_concurrent_modification(
    tenants: TenantCommands, app: GovernanceApplication
) -> None:
    tenant = create(tenants)
    first, second = app.load(tenant.id, tenant.id, Tenant), app.load(tenant.id, tenant.id, Tenant)
    meta = EventMeta(tenant.id, Actor("operator", (MaciRole.EXECUTIVE,)), HASH)
    first.suspend(meta)
    second.suspend(meta)
    app.save_for(tenant.id, first)
    with pytest.raises(ConcurrentModification):
        app.save_for(tenant.id, second)


def test_read_only_and_unknown_fields_are_refused_by_name(
    tenants: TenantCommands, app: GovernanceApplication
) -> None:
    tenant = create(tenants)
    with pytest.raises(ValidationFailed) as err:
        tenants.update(PLATFORM, tenant.id, {"tenant_slug": "other", "colour": "red"})
    assert err.value.details["fields"] == [
        {"field": "colour", "message": "read-only or unknown field"},
        {"field": "tenant_slug", "message": "read-only or unknown field"},
    ]
    assert app.load(tenant.id, tenant.id, Tenant).version == tenant.version


def test_setting_the_status_a_tenant_has_changes_nothing(
    tenants: TenantCommands, app: GovernanceApplication
) -> None:
    tenant = create(tenants)
    assert tenants.update(PLATFORM, tenant.id, {"status": "active"}).updated_fields == []
    assert app.load(tenant.id, tenant.id, Tenant).version == tenant.version


@pytest.mark.parametrize("status", ["purged", "archived"])
def test_status_may_only_be_set_to_active_suspended_or_deactivated(
    tenants: TenantCommands, app: GovernanceApplication, status: str
) -> None:
    tenant = create(tenants)
    with pytest.raises(ValidationFailed) as err:
        tenants.update(PLATFORM, tenant.id, {"status": status})
    assert err.value.details["fields"] == [
        {"field": "status", "message": "must be one of active, suspended, deactivated"}
    ]
    assert app.load(tenant.id, tenant.id, Tenant).status is TenantStatus.ACTIVE
