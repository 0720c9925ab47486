"""With ACGS_VAULT_ADDR (and a token) set, the same integration flow keeps its keys in OpenBao
transit: create, test against slapd, change the password, rotate, and purge the tenant, which
deletes its transit key."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from uuid import uuid4

import pytest

from api.bootstrap import System, build
from api.settings import Settings
from commands.context import CommandContext, Principal
from commands.integrations import CreateIntegration
from commands.tenant_keys import TenantKeyCommands
from commands.tenants import CreateTenant
from domain.maci import MaciRole
from domain.secrets import SecretUnreadable
from infra.keys.openbao import OpenBaoTransit
from tests.integration.spine.support import HASH, PLATFORM
from tests.peers.openbao import OpenBao
from tests.peers.slapd import Slapd

pytestmark = [pytest.mark.vault, pytest.mark.ldap, pytest.mark.postgres]


@pytest.fixture
def vault_system(pg_admin_url: str, openbao: OpenBao, tmp_path: Path) -> Iterator[System]:
    settings = Settings.from_env(
        {
            "ACGS_DATABASE_URL": pg_admin_url,
            "ACGS_DATA_DIR": str(tmp_path),
            "ACGS_VAULT_ADDR": openbao.url,
            "ACGS_VAULT_TOKEN": openbao.root_token,
        }
    )
    system = build(settings, apply_migrations=True)
    yield system
    system.close()


def test_the_flow_with_keys_in_openbao_transit(
    vault_system: System, openbao: OpenBao, slapd: Slapd
) -> None:
    system = vault_system
    assert system.sealer is not None
    assert system.integrations is not None
    assert isinstance(system.sealer.provider, OpenBaoTransit)
    slug = f"vault-{uuid4().hex[:10]}"
    tenant = system.tenants.create(
        PLATFORM, CreateTenant(tenant_name=f"Vault {slug}", tenant_slug=slug, admin_email="a@b.co")
    )
    admin = CommandContext(Principal("admin", tenant.id, (MaciRole.EXECUTIVE,)), HASH)
    config = {
        "server_url": slapd.ldaps_url,
        "base_dn": slapd.base_dn,
        "bind_dn": slapd.service_dn,
        "bind_password": slapd.service_password,
        "ca_cert_pem": slapd.ca_pem,
    }
    integration = system.integrations.create(
        admin, tenant.id, CreateIntegration("ldap", "Directory", config)
    )
    assert slapd.service_password not in str(integration.config)
    assert system.integrations.test(admin, tenant.id, integration.id).result.failure is None

    updated = system.integrations.update(
        admin, tenant.id, integration.id, {"config": {"timeout_seconds": 3}}
    )
    assert updated.updated_fields == ["config.timeout_seconds"]

    provider = system.sealer.provider
    assert provider.key_version(tenant.id) == 1
    rotated = TenantKeyCommands(system.app, HASH, system.sealer).rotate(PLATFORM, tenant.id)
    assert (rotated.kek_version, rotated.rewrapped) == (2, 1)
    system.sealer._cache.clear()
    assert system.integrations.test(admin, tenant.id, integration.id).result.failure is None

    sealed = system.integrations.load(tenant.id, integration.id).config["bind_password"]
    system.tenants.deactivate(PLATFORM, tenant.id, immediate=True)
    assert provider.key_version(tenant.id) == 0
    with pytest.raises(SecretUnreadable):
        system.sealer.open(tenant.id, integration.config_key_id, "config.bind_password", sealed)
