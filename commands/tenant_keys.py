"""Rotating a tenant's key-encryption key (`acgs keys rotate --tenant SLUG`): a new key version,
every data key of the tenant rewrapped with it (the data keys themselves, and so every sealed
secret in the events, stay as they are). Platform EXECUTIVE only; audited in the tenant's log."""

from __future__ import annotations

from typing import Protocol
from uuid import UUID, uuid4

from commands.application import GovernanceApplication
from commands.authorization import Permission
from commands.context import CommandContext
from commands.preamble import CommandPreamble
from domain.audit import AuditEntry
from domain.errors import NotFound
from domain.tenant.aggregate import Tenant
from domain.tenant.values import TenantStatus


class Rotated(Protocol):
    @property
    def kek_version(self) -> int: ...

    @property
    def rewrapped(self) -> int: ...


class TenantKeyRotation(Protocol):
    def rotate_tenant(self, tenant_id: UUID) -> Rotated: ...


class TenantKeyCommands:
    def __init__(
        self, app: GovernanceApplication, constitutional_hash: str, keys: TenantKeyRotation
    ) -> None:
        self._app = app
        self._hash = constitutional_hash
        self._preamble = CommandPreamble(app, constitutional_hash)
        self._keys = keys

    def rotate(self, ctx: CommandContext, tenant_id: UUID) -> Rotated:
        meta = self._preamble.begin(
            ctx, Permission.TENANT_KEY_ROTATE, None, "rotate_tenant_key", tenant_id
        )
        tenant = self._app.load(tenant_id, tenant_id, Tenant)
        if tenant.status is TenantStatus.PURGED:
            raise NotFound("tenant not found", {"tenant_id": str(tenant_id)})
        rotated = self._keys.rotate_tenant(tenant_id)
        entry = AuditEntry.record(
            entry_id=uuid4(),
            category="admin",
            action="rotate_tenant_key",
            result="success",
            target_resource=f"tenant/{tenant_id}",
            details={"kek_version": rotated.kek_version, "rewrapped_keys": rotated.rewrapped},
            meta=meta,
        )
        self._app.save_for(tenant_id, entry)
        return rotated
