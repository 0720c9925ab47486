"""Rotating a tenant's key-encryption key, on the in-memory event store with the local key file:
the data keys are rewrapped; a purged tenant's key is never brought back by a rotation."""

from __future__ import annotations

from pathlib import Path

import pytest

from commands.application import GovernanceApplication
from commands.context import CommandContext, Principal
from commands.tenant_keys import TenantKeyCommands
from commands.tenants import CreateTenant, TenantCommands
from domain.constitution import DEFAULT_CONSTITUTIONAL_HASH
from domain.errors import NotFound
from domain.maci import MaciRole
from domain.tenancy import SYSTEM_TENANT_ID
from infra.keys.envelope import EnvelopeSealer
from infra.keys.local_file import LocalKeyFile
from infra.memory.data_keys import InMemoryDataKeys

HASH = DEFAULT_CONSTITUTIONAL_HASH
PLATFORM = CommandContext(Principal("operator", SYSTEM_TENANT_ID, (MaciRole.EXECUTIVE,)), HASH)
MEMORY = {"PERSISTENCE_MODULE": "infra.memory.event_store:InMemoryFactory"}


@pytest.fixture
def sealer(tmp_path: Path) -> EnvelopeSealer:
    return EnvelopeSealer(LocalKeyFile(tmp_path / "keys"), InMemoryDataKeys())


def test_rotation_rewraps_the_data_keys_and_refuses_a_purged_tenant(
    sealer: EnvelopeSealer,
) -> None:
    app = GovernanceApplication(env=MEMORY)
    tenants = TenantCommands(app, HASH, tenant_keys=sealer)
    tenant = tenants.create(PLATFORM, CreateTenant("Keyed", "keyed", "a@example.com"))
    key_id = sealer.new_key(tenant.id)
    sealed = sealer.seal(tenant.id, key_id, "config.password", "hunter2")
    rotation = TenantKeyCommands(app, HASH, sealer)

    rotated = rotation.rotate(PLATFORM, tenant.id)

    assert (rotated.kek_version, rotated.rewrapped) == (2, 1)
    assert sealer.open(tenant.id, key_id, "config.password", sealed) == "hunter2"
    tenants.deactivate(PLATFORM, tenant.id, immediate=True)
    assert sealer.provider.key_version(tenant.id) == 0
    with pytest.raises(NotFound):
        rotation.rotate(PLATFORM, tenant.id)
    assert sealer.provider.key_version(tenant.id) == 0  # no new key for the purged tenant
