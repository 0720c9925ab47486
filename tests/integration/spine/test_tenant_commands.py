"""Tenant commands against the real event store: what only PostgreSQL can show (concurrent
saves, the recorder's typed refusals from its constraints, audit rows). Handler rules that need
no SQL run on the in-memory store in tests/unit/tenant/test_tenant_commands.py."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Iterator
from typing import Any
from uuid import UUID

import psycopg
import pytest
from psycopg.conninfo import make_conninfo

from api.bootstrap import System, event_store_env
from api.settings import Settings
from commands.application import GovernanceApplication
from commands.context import CommandContext, Principal
from commands.tenants import CreateTenant, TenantCommands
from domain.errors import (
    ConstitutionalHashMismatch,
    ConstitutionalHashRequired,
    DomainError,
    Forbidden,
    NotFound,
    TenantNameTaken,
    TenantSlugTaken,
)
from domain.maci import MaciRole
from domain.tenancy import SYSTEM_TENANT_ID
from domain.tenant.aggregate import Tenant
from infra.postgres.migrate import migrate
from tests.integration.spine.support import HASH, PLATFORM, catch_up

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


@pytest.fixture
def fresh_database(pg_admin_url: str) -> Iterator[str]:
    """A migrated database of its own: no system tenant yet."""
    name = f"acgs_boot_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(pg_admin_url, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    url = make_conninfo(pg_admin_url, dbname=name)
    try:
        migrate(url)
        yield url
    finally:
        with psycopg.connect(pg_admin_url, autocommit=True) as conn:
            conn.execute(f"DROP DATABASE {name} WITH (FORCE)")


class _BeatenToIt(GovernanceApplication):
    """A process that finds no system tenant, and then `rival` creates it before it saves."""

    name = GovernanceApplication.name  # the same event store
    rival: TenantCommands

    def load(self, tenant_id: UUID, aggregate_id: UUID, kind: type[Any]) -> Any:
        try:
            return super().load(tenant_id, aggregate_id, kind)
        except NotFound:
            assert self.rival.bootstrap_system_tenant()
            raise


def test_processes_starting_together_create_the_system_tenant_once(
    fresh_database: str, settings: Settings
) -> None:
    env = event_store_env(fresh_database, settings)
    first, second = GovernanceApplication(env=env), _BeatenToIt(env=env)
    try:
        second.rival = TenantCommands(first, HASH)
        assert TenantCommands(second, HASH).bootstrap_system_tenant() is False
        assert TenantCommands(first, HASH).bootstrap_system_tenant() is False  # exists now
        assert first.load(SYSTEM_TENANT_ID, SYSTEM_TENANT_ID, Tenant).version == 1
    finally:
        first.close()
        second.close()
    with psycopg.connect(fresh_database) as conn:
        assert conn.execute(
            "SELECT count(*) FROM governance_events WHERE originator_id = %s", [SYSTEM_TENANT_ID]
        ).fetchone() == (1,)
