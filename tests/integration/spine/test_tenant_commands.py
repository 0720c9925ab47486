"""Tenant commands against the real event store: uniqueness, authorization, the hash."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest

from api.bootstrap import System
from commands.context import CommandContext, Principal
from commands.tenants import CreateTenant
from domain.errors import (
    ConstitutionalHashMismatch,
    ConstitutionalHashRequired,
    DomainError,
    Forbidden,
    InvalidStateTransition,
    NotFound,
    TenantNameTaken,
    TenantSlugTaken,
)
from domain.maci import MaciRole
from domain.tenancy import SYSTEM_TENANT_ID
from domain.tenant.aggregate import Tenant
from domain.tenant.values import TenantStatus
from tests.integration.spine.conftest import HASH, PLATFORM, catch_up

pytestmark = pytest.mark.postgres


def events_count(admin_conn: Any) -> int:
    return int(admin_conn.execute("SELECT count(*) FROM governance_events").fetchone()[0])


def test_two_concurrent_creates_of_one_slug_exactly_one_wins(system: System, unique: str) -> None:
    results: list[object] = []
    barrier = threading.Barrier(8)

    def create(i: int) -> None:
        barrier.wait()
        try:
            results.append(
                system.tenants.create(
                    PLATFORM, CreateTenant(f"Racer {unique} {i}", f"race-{unique}", f"r{i}@x.com")
                )
            )
        except DomainError as exc:
            results.append(exc)

    threads = [threading.Thread(target=create, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    winners = [r for r in results if isinstance(r, Tenant)]
    assert len(winners) == 1
    assert all(isinstance(r, TenantSlugTaken) for r in results if r not in winners)


def test_duplicate_name_is_taken_case_insensitively(system: System, unique: str) -> None:
    system.tenants.create(PLATFORM, CreateTenant(f"Globex {unique}", f"globex-{unique}", "a@x.com"))
    with pytest.raises(TenantNameTaken):
        system.tenants.create(
            PLATFORM, CreateTenant(f"GLOBEX {unique}", f"globex2-{unique}", "a@x.com")
        )


def test_renaming_frees_the_old_name(system: System, unique: str) -> None:
    first = system.tenants.create(
        PLATFORM, CreateTenant(f"Old {unique}", f"old-{unique}", "a@x.com")
    )
    system.tenants.update(PLATFORM, first.id, {"tenant_name": f"New {unique}"})
    again = system.tenants.create(
        PLATFORM, CreateTenant(f"Old {unique}", f"old2-{unique}", "a@x.com")
    )
    assert again.tenant_name == f"Old {unique}"


def test_immediate_purge_frees_the_slug_and_hides_the_tenant(system: System, unique: str) -> None:
    tenant = system.tenants.create(
        PLATFORM, CreateTenant(f"Gone {unique}", f"gone-{unique}", "a@x.com")
    )
    purged = system.tenants.deactivate(PLATFORM, tenant.id, immediate=True)
    assert purged.status is TenantStatus.PURGED
    with pytest.raises(NotFound):
        system.tenants.get(PLATFORM, tenant.id)
    with pytest.raises(NotFound):
        system.tenants.reactivate(PLATFORM, tenant.id)
    system.tenants.create(PLATFORM, CreateTenant(f"Gone {unique}", f"gone-{unique}", "a@x.com"))


def test_soft_delete_then_reactivate(system: System, create_tenant: Callable[..., Tenant]) -> None:
    tenant = create_tenant()
    deactivated = system.tenants.deactivate(PLATFORM, tenant.id)
    assert deactivated.status is TenantStatus.DEACTIVATED
    assert deactivated.data_purge_scheduled is not None
    with pytest.raises(InvalidStateTransition):
        system.tenants.update(PLATFORM, tenant.id, {"tenant_name": "Renamed while deactivated"})
    assert system.tenants.reactivate(PLATFORM, tenant.id).status is TenantStatus.ACTIVE


def test_the_system_tenant_cannot_be_deactivated(system: System) -> None:
    with pytest.raises(Forbidden):
        system.tenants.deactivate(PLATFORM, SYSTEM_TENANT_ID)


def test_tenant_admin_may_rename_but_not_raise_own_quotas(
    system: System,
    create_tenant: Callable[..., Tenant],
    unique: str,
) -> None:
    tenant = create_tenant()
    admin = CommandContext(Principal("alice", tenant.id, (MaciRole.EXECUTIVE,)), HASH)
    assert system.tenants.update(
        admin, tenant.id, {"tenant_name": f"Self {unique}"}
    ).updated_fields == ["tenant_name"]
    with pytest.raises(Forbidden):
        system.tenants.update(admin, tenant.id, {"max_requests_per_minute": 999_999})


def test_other_tenants_admin_gets_not_found(
    system: System, create_tenant: Callable[..., Tenant]
) -> None:
    a, b = create_tenant(), create_tenant()
    intruder = CommandContext(Principal("mallory", b.id, (MaciRole.EXECUTIVE,)), HASH)
    with pytest.raises(NotFound):
        system.tenants.update(intruder, a.id, {"tenant_name": "Hijacked"})
    with pytest.raises(NotFound):
        system.tenants.get(intruder, a.id)


@pytest.mark.parametrize(
    ("supplied", "error"),
    [
        (None, ConstitutionalHashRequired),
        ("", ConstitutionalHashRequired),
        ("0000000000000000", ConstitutionalHashMismatch),
        ("INVALID", ConstitutionalHashMismatch),
    ],
)
def test_hash_refusals_write_only_their_audit_entry(
    system: System,
    admin_conn: Any,
    unique: str,
    supplied: str | None,
    error: type[Exception],
) -> None:
    actor = f"hash-op-{unique}"  # this test's own actor: its audit row and no other
    ctx = CommandContext(Principal(actor, SYSTEM_TENANT_ID, (MaciRole.EXECUTIVE,)), supplied)
    before = events_count(admin_conn)
    with pytest.raises(error):
        system.tenants.create(ctx, CreateTenant(f"Hash {unique}", f"hash-{unique}", "a@x.com"))
    assert events_count(admin_conn) == before + 1
    catch_up(system)
    rows = admin_conn.execute(
        "SELECT tenant_id, action, event_category, result, constitutional_validation_passed "
        "FROM tenant_audit_log WHERE actor_id = %s",
        [actor],
    ).fetchall()
    assert rows == [(SYSTEM_TENANT_ID, "create_tenant", "governance", "denied", False)]
    assert admin_conn.execute(
        "SELECT count(*) FROM tenants WHERE tenant_slug = %s", [f"hash-{unique}"]
    ).fetchone() == (0,)


def test_forbidden_create_is_audited_in_the_callers_tenant(
    system: System,
    create_tenant: Callable[..., Tenant],
    admin_conn: Any,
    unique: str,
) -> None:
    tenant = create_tenant()
    ctx = CommandContext(Principal("bob", tenant.id, (MaciRole.EXECUTIVE,)), HASH)
    with pytest.raises(Forbidden):
        system.tenants.create(ctx, CreateTenant(f"Nope {unique}", f"nope-{unique}", "a@x.com"))
    catch_up(system)
    row = admin_conn.execute(
        "SELECT event_category, result, actor_id FROM tenant_audit_log "
        "WHERE tenant_id = %s AND result = 'denied'",
        [tenant.id],
    ).fetchone()
    assert row == ("authorization", "denied", "bob")
