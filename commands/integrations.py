"""Integration commands: create, update, delete (archive), test, and what the health checker
records. Each user command runs the shared preamble (authorize, constitutional hash, metadata).

Secrets are sealed by the `SecretSealer` port before any event exists; a connectivity test opens
them only to hand them to the `Probe` port (a breaker-guarded adapter chosen by the composition
root) and records the outcome: `integration.health_changed` when the status changes, and the
time of the check (`HealthLedger`) every time.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol
from uuid import UUID, uuid4

from commands.application import Claim, GovernanceApplication
from commands.authorization import Permission
from commands.context import CommandContext
from commands.preamble import CommandPreamble
from domain.errors import (
    DependencyUnavailable,
    IntegrationAuthFailed,
    IntegrationUnreachable,
    NotFound,
    ValidationFailed,
)
from domain.events import SYSTEM_ACTOR, EventMeta
from domain.integration.aggregate import Integration
from domain.integration.probe import ProbeFailure, ProbeResult
from domain.integration.values import HealthStatus, IntegrationType
from domain.secrets import SecretSealer
from domain.tenant.aggregate import Tenant
from domain.tenant.values import TenantStatus

UPDATABLE = frozenset({"integration_name", "enabled", "config"})


class Probe(Protocol):
    """Tests one integration's connectivity with its clear configuration; raises
    DependencyUnavailable while its circuit breaker is open."""

    def __call__(
        self, integration_id: UUID, integration_type: IntegrationType, config: dict[str, Any]
    ) -> ProbeResult: ...


class HealthLedger(Protocol):
    """Where the time and outcome of every check is kept (the read model's
    `last_health_check`), whether or not the status changed."""

    def checked(
        self, tenant_id: UUID, integration_id: UUID, status: HealthStatus, at: datetime
    ) -> None: ...


@dataclass(frozen=True)
class CreateIntegration:
    integration_type: object
    integration_name: object
    config: object
    enabled: bool = True


@dataclass(frozen=True)
class IntegrationUpdate:
    integration: Integration
    updated_fields: list[str]


@dataclass(frozen=True)
class TestOutcome:
    integration: Integration
    result: ProbeResult
    tested_at: datetime = field(default_factory=lambda: datetime.now(UTC))


def name_claim(integration_type: str, name: str) -> Claim:
    return ("integration_name", f"{integration_type}:{name.casefold()}")


class IntegrationCommands:
    def __init__(
        self,
        app: GovernanceApplication,
        constitutional_hash: str,
        sealer: SecretSealer,
        probe: Probe,
        ledger: HealthLedger,
        *,
        production: bool,
    ) -> None:
        self._app = app
        self._hash = constitutional_hash
        self._preamble = CommandPreamble(app, constitutional_hash)
        self.sealer = sealer
        self._probe = probe
        self._ledger = ledger
        self._production = production

    def create(
        self, ctx: CommandContext, tenant_id: UUID, command: CreateIntegration
    ) -> Integration:
        integration_id = uuid4()
        meta = self._preamble.begin(
            ctx, Permission.INTEGRATION_MANAGE, tenant_id, "create_integration", tenant_id
        )
        tenant = self._app.load(tenant_id, tenant_id, Tenant)
        if tenant.status is TenantStatus.PURGED:
            raise NotFound("tenant not found", {"tenant_id": str(tenant_id)})
        integration = Integration.register(
            integration_id=integration_id,
            tenant_id=tenant_id,
            integration_type=command.integration_type,
            name=command.integration_name,
            config=command.config,
            enabled=command.enabled,
            sealer=self.sealer,
            production=self._production,
            meta=meta,
        )
        claim = name_claim(integration.integration_type.value, integration.integration_name)
        try:
            self._app.save_for(tenant_id, integration, claims=[claim])
        except BaseException:
            self.sealer.shred(tenant_id, integration.config_key_id)  # nothing half-written
            raise
        return integration

    def update(
        self, ctx: CommandContext, tenant_id: UUID, integration_id: UUID, changes: dict[str, Any]
    ) -> IntegrationUpdate:
        unknown = sorted(set(changes) - UPDATABLE)
        if unknown:
            raise ValidationFailed(
                f"fields cannot be changed: {', '.join(unknown)}",
                {
                    "fields": [
                        {"field": f, "message": "read-only or unknown field"} for f in unknown
                    ]
                },
            )
        if not changes:
            raise ValidationFailed("no fields to update", {"fields": []})
        meta = self._preamble.begin(
            ctx, Permission.INTEGRATION_MANAGE, tenant_id, "update_integration", tenant_id
        )
        integration = self.load(tenant_id, integration_id)
        old_name = integration.integration_name
        updated = integration.update(
            changes, sealer=self.sealer, production=self._production, meta=meta
        )
        claims: list[Claim] = []
        releases: list[Claim] = []
        kind = integration.integration_type.value
        if integration.integration_name.casefold() != old_name.casefold():
            claims = [name_claim(kind, integration.integration_name)]
            releases = [name_claim(kind, old_name)]
        self._app.save_for(tenant_id, integration, claims=claims, releases=releases)
        return IntegrationUpdate(integration, updated)

    def archive(self, ctx: CommandContext, tenant_id: UUID, integration_id: UUID) -> Integration:
        """Delete: archived for audit (its name is free again); secrets shredded later."""
        meta = self._preamble.begin(
            ctx, Permission.INTEGRATION_MANAGE, tenant_id, "delete_integration", tenant_id
        )
        integration = self.load(tenant_id, integration_id)
        integration.archive(meta)
        release = name_claim(integration.integration_type.value, integration.integration_name)
        self._app.save_for(tenant_id, integration, releases=[release])
        return integration

    def test(self, ctx: CommandContext, tenant_id: UUID, integration_id: UUID) -> TestOutcome:
        """Connect for real; record the outcome; a failure to connect or authenticate is
        raised (after it was recorded) as IntegrationUnreachable or IntegrationAuthFailed."""
        meta = self._preamble.begin(
            ctx, Permission.INTEGRATION_MANAGE, tenant_id, "test_integration", tenant_id
        )
        integration = self.load(tenant_id, integration_id)
        result = self._run_probe(integration, meta)
        details = {"integration_id": str(integration_id), "test_details": result.details()}
        if result.failure is ProbeFailure.UNREACHABLE:
            raise IntegrationUnreachable(result.message, details)
        if result.failure is ProbeFailure.AUTH_FAILED:
            raise IntegrationAuthFailed(result.message, details)
        return TestOutcome(integration, result)

    def check_health(self, tenant_id: UUID, integration_id: UUID) -> HealthStatus:
        """The health checker's periodic test (as the system, no preamble)."""
        integration = self.load(tenant_id, integration_id)
        if not integration.enabled:
            return integration.health_status
        meta = EventMeta(tenant_id, SYSTEM_ACTOR, self._hash)
        try:
            return self._run_probe(integration, meta).health
        except DependencyUnavailable:
            return HealthStatus.UNHEALTHY

    def shred_expired(self, tenant_id: UUID, integration_id: UUID, now: datetime) -> bool:
        """Crypto-shred an archived integration's secrets once its retention has passed."""
        integration = self._app.load(tenant_id, integration_id, Integration)
        meta = EventMeta(tenant_id, SYSTEM_ACTOR, self._hash)
        if not integration.shred_secrets(self.sealer, now, meta):
            return False
        self._app.save_for(tenant_id, integration)
        return True

    def load(self, tenant_id: UUID, integration_id: UUID) -> Integration:
        """A live (not archived) integration of the tenant; NotFound otherwise."""
        integration = self._app.load(tenant_id, integration_id, Integration)
        if integration.archived or integration.tenant_id != tenant_id:
            raise NotFound("integration not found", {"integration_id": str(integration_id)})
        return integration

    def _run_probe(self, integration: Integration, meta: EventMeta) -> ProbeResult:
        config = integration.clear_config(self.sealer)
        at = datetime.now(UTC)
        try:
            result = self._probe(integration.id, integration.integration_type, config)
        except DependencyUnavailable:
            self._record(integration, HealthStatus.UNHEALTHY, "circuit breaker open", meta, at)
            raise
        self._record(integration, result.health, result.message, meta, at)
        return result

    def _record(
        self,
        integration: Integration,
        status: HealthStatus,
        reason: str,
        meta: EventMeta,
        at: datetime,
    ) -> None:
        if integration.record_health(status, reason, meta):
            self._app.save_for(integration.tenant_id, integration)
        self._ledger.checked(integration.tenant_id, integration.id, status, at)
