"""A tenant's sign-in settings as a specification: defaults, bounds, every bad field at once,
who may change them, and the event that carries them (replayed to the same state)."""

from __future__ import annotations

from typing import Any
from uuid import uuid4

import pytest

from commands.application import GovernanceApplication
from commands.context import CommandContext, Principal
from commands.tenants import CreateTenant, TenantCommands
from domain.constitution import DEFAULT_CONSTITUTIONAL_HASH
from domain.errors import Forbidden, InvalidStateTransition, ValidationFailed
from domain.events import SYSTEM_ACTOR, EventMeta, event_type
from domain.maci import MaciRole
from domain.tenancy import SYSTEM_TENANT_ID
from domain.tenant.aggregate import Tenant
from domain.tenant.sign_in_settings import SignInSettings

HASH = DEFAULT_CONSTITUTIONAL_HASH
PLATFORM = CommandContext(Principal("operator", SYSTEM_TENANT_ID, (MaciRole.EXECUTIVE,)), HASH)
MEMORY = {"PERSISTENCE_MODULE": "infra.memory.event_store:InMemoryFactory"}


def _meta() -> EventMeta:
    return EventMeta(uuid4(), SYSTEM_ACTOR, HASH)


def _tenant() -> Tenant:
    m = _meta()
    return Tenant.register(
        tenant_id=m.tenant_id, name="Acme", slug="acme", email="a@acme.test", meta=m
    )


def _fields(error: pytest.ExceptionInfo[ValidationFailed]) -> dict[str, str]:
    return {f["field"]: f["message"] for f in error.value.details["fields"]}


def test_a_new_tenant_signs_in_with_monitor_15_minutes_and_8_hours() -> None:
    assert _tenant().sign_in == SignInSettings(MaciRole.MONITOR, 900, 28_800)


def test_a_change_is_one_event_and_replays_to_the_same_settings() -> None:
    tenant = _tenant()
    changes = {"default_role": "none", "access_token_ttl_seconds": 120}
    assert tenant.change_sign_in_settings(changes, _meta()) == [
        "access_token_ttl_seconds",
        "default_role",
    ]
    assert tenant.sign_in == SignInSettings(None, 120, 28_800)
    events = tenant.collect_events()
    changed = events[-1]
    assert event_type(changed) == "tenant.sign_in_settings_changed"
    assert (changed.default_role, changed.access_token_ttl_seconds) == ("none", 120)
    replayed: Tenant | None = None
    for stored in events:
        replayed = stored.mutate(replayed)
    assert replayed is not None
    assert replayed.sign_in == tenant.sign_in


def test_an_unchanged_value_emits_nothing() -> None:
    tenant = _tenant()
    tenant.collect_events()
    assert tenant.change_sign_in_settings({"default_role": "MONITOR"}, _meta()) == []
    assert tenant.collect_events() == []


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        (
            {"default_role": "KING", "access_token_ttl_seconds": 59,
             "refresh_token_ttl_seconds": 30 * 86_400 + 1},
            {"default_role", "access_token_ttl_seconds", "refresh_token_ttl_seconds"},
        ),
        ({"default_role": "monitor"}, {"default_role"}),  # role names are upper case
        ({"access_token_ttl_seconds": 86_401}, {"access_token_ttl_seconds"}),
        ({"access_token_ttl_seconds": True}, {"access_token_ttl_seconds"}),
        ({"access_token_ttl_seconds": "900"}, {"access_token_ttl_seconds"}),
        ({"refresh_token_ttl_seconds": 299}, {"refresh_token_ttl_seconds"}),
        # the refresh token may not die before the access token it renews
        ({"access_token_ttl_seconds": 3600, "refresh_token_ttl_seconds": 600},
         {"refresh_token_ttl_seconds"}),
        ({"access_token_ttl_seconds": 28_801}, {"access_token_ttl_seconds"}),
        ({"refresh_token_ttl_seconds": 899}, {"refresh_token_ttl_seconds"}),
    ],
)  # fmt: skip
def test_bad_values_are_refused_all_at_once(changes: dict[str, object], expected: set[str]) -> None:
    tenant = _tenant()
    with pytest.raises(ValidationFailed) as refused:
        tenant.change_sign_in_settings(changes, _meta())
    assert set(_fields(refused)) == expected
    assert tenant.sign_in == SignInSettings()


def test_the_lifetime_check_names_the_bound() -> None:
    with pytest.raises(ValidationFailed) as refused:
        SignInSettings().changed({"access_token_ttl_seconds": 28_801})
    assert _fields(refused) == {
        "access_token_ttl_seconds": "must be at most the refresh token's lifetime (28800 s)"
    }


def test_a_deactivated_tenant_keeps_its_settings() -> None:
    tenant = _tenant()
    tenant.deactivate(_meta())
    with pytest.raises(InvalidStateTransition):
        tenant.change_sign_in_settings({"default_role": "none"}, _meta())


@pytest.fixture
def tenants() -> TenantCommands:
    commands = TenantCommands(GovernanceApplication(env=MEMORY), HASH)
    commands.bootstrap_system_tenant()
    return commands


def _admin_of(tenant: Tenant, role: MaciRole = MaciRole.EXECUTIVE) -> CommandContext:
    return CommandContext(Principal("admin", tenant.id, (role,)), HASH)


def test_the_tenant_admin_changes_them_a_monitor_may_not(tenants: TenantCommands) -> None:
    tenant = tenants.create(PLATFORM, CreateTenant("Acme", "acme", "a@acme.test"))
    changes: dict[str, Any] = {"default_role": "AUDITOR", "refresh_token_ttl_seconds": 3600}
    done = tenants.update(_admin_of(tenant), tenant.id, changes)
    assert done.updated_fields == ["default_role", "refresh_token_ttl_seconds"]
    assert done.tenant.sign_in == SignInSettings(MaciRole.AUDITOR, 900, 3600)
    with pytest.raises(Forbidden):
        tenants.update(_admin_of(tenant, MaciRole.MONITOR), tenant.id, {"default_role": "none"})


def test_every_bad_field_of_one_update_is_listed_and_nothing_is_saved(
    tenants: TenantCommands,
) -> None:
    tenant = tenants.create(PLATFORM, CreateTenant("Acme", "acme", "a@acme.test"))
    changes: dict[str, Any] = {
        "tenant_name": "x",
        "admin_email": "not-an-email",
        "max_storage_gb": 0,
        "max_requests_per_minute": -1,
        "default_role": "KING",
        "access_token_ttl_seconds": 1,
    }
    with pytest.raises(ValidationFailed) as refused:
        tenants.update(PLATFORM, tenant.id, changes)
    assert set(_fields(refused)) == set(changes)
    reloaded = tenants.update(PLATFORM, tenant.id, {"default_role": "MONITOR"})
    assert reloaded.updated_fields == []
    assert reloaded.tenant.version == tenant.version
