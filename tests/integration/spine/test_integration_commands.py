"""The integration commands' own rules: only name, enabled and config change (at least one of
them), a renamed integration moves its name claim, a disabled one is not probed, an archived one
is gone for the commands and its secrets wait for their retention, and a purged tenant gets no
new integration."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

import pytest

from api.bootstrap import System
from commands.integrations import CreateIntegration, IntegrationCommands
from domain.errors import DomainError, InvalidStateTransition, NotFound, ValidationFailed
from domain.events import SYSTEM_ACTOR, EventMeta
from domain.integration.aggregate import Integration
from domain.integration.values import REDACTED, HealthStatus
from domain.tenant.aggregate import Tenant
from tests.integration.spine.support import HASH, PLATFORM

pytestmark = pytest.mark.postgres

SIEM = {"kind": "cef_syslog", "host": "127.0.0.1", "port": 6514}


@pytest.fixture
def integrations(system: System) -> IntegrationCommands:
    assert system.integrations is not None
    return system.integrations


def test_only_some_fields_change_and_a_rename_moves_the_name(
    integrations: IntegrationCommands, create_tenant: Callable[..., Tenant]
) -> None:
    tenant = create_tenant()
    made = integrations.create(PLATFORM, tenant.id, CreateIntegration("siem", "SIEM A", SIEM))
    with pytest.raises(ValidationFailed) as refused:
        integrations.update(PLATFORM, tenant.id, made.id, {"integration_type": "kafka"})
    assert refused.value.details["fields"] == [
        {"field": "integration_type", "message": "read-only or unknown field"}
    ]
    with pytest.raises(ValidationFailed, match="no fields to update"):
        integrations.update(PLATFORM, tenant.id, made.id, {})
    renamed = integrations.update(PLATFORM, tenant.id, made.id, {"integration_name": "SIEM B"})
    assert renamed.updated_fields == ["integration_name"]
    # the old name is free again, the new one taken
    integrations.create(PLATFORM, tenant.id, CreateIntegration("siem", "siem a", SIEM))
    with pytest.raises(DomainError, match="already taken"):
        integrations.create(PLATFORM, tenant.id, CreateIntegration("siem", "SIEM B", SIEM))


def test_a_disabled_integration_is_not_probed(
    integrations: IntegrationCommands, create_tenant: Callable[..., Tenant]
) -> None:
    tenant = create_tenant()
    made = integrations.create(
        PLATFORM, tenant.id, CreateIntegration("siem", "Off", SIEM, enabled=False)
    )
    assert integrations.check_health(tenant.id, made.id) is HealthStatus.UNKNOWN


def test_an_archived_integration_is_gone_and_keeps_its_secrets_for_the_retention(
    system: System, integrations: IntegrationCommands, create_tenant: Callable[..., Tenant]
) -> None:
    tenant = create_tenant()
    made = integrations.create(PLATFORM, tenant.id, CreateIntegration("siem", "Old", SIEM))
    integrations.archive(PLATFORM, tenant.id, made.id)
    with pytest.raises(NotFound):
        integrations.load(tenant.id, made.id)
    assert integrations.shred_expired(tenant.id, made.id, datetime.now(UTC)) is False
    archived = system.app.load(tenant.id, made.id, Integration)
    with pytest.raises(InvalidStateTransition, match="cannot delete an integration that is arch"):
        archived.archive(EventMeta(tenant.id, SYSTEM_ACTOR, HASH))


def test_bad_input_is_refused_whole_and_secrets_are_shown_redacted(
    integrations: IntegrationCommands, create_tenant: Callable[..., Tenant]
) -> None:
    tenant = create_tenant()
    with pytest.raises(ValidationFailed) as refused:
        integrations.create(PLATFORM, tenant.id, CreateIntegration("fax", "", SIEM))
    assert [f["field"] for f in refused.value.details["fields"]] == [
        "integration_type",
        "integration_name",
    ]
    hec = {"kind": "splunk_hec", "url": "https://127.0.0.1:8088", "token": "hec-token-4711"}
    made = integrations.create(PLATFORM, tenant.id, CreateIntegration("siem", "HEC", hec))
    assert made.redacted_config()["token"] == REDACTED
    with pytest.raises(ValidationFailed, match=r"config\.url: must be a string"):
        integrations.update(PLATFORM, tenant.id, made.id, {"config": {"url": 5}})
    assert integrations.load(tenant.id, made.id).redacted_config()["url"] == hec["url"]


def test_a_purged_tenant_gets_no_integration(
    system: System, integrations: IntegrationCommands, create_tenant: Callable[..., Tenant]
) -> None:
    created = create_tenant()
    tenant = system.app.load(created.id, created.id, Tenant)
    meta = EventMeta(tenant.id, SYSTEM_ACTOR, HASH)
    tenant.deactivate(meta)
    tenant.purge(meta)
    system.app.save_for(tenant.id, tenant)
    with pytest.raises(NotFound, match="tenant not found"):
        integrations.create(PLATFORM, tenant.id, CreateIntegration("siem", "Late", SIEM))
