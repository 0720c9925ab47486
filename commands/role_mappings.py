"""Role mapping commands: create, change, delete (tenant admins, i.e. EXECUTIVE). The mapping's
integration must be a live integration of the same tenant (NotFound otherwise); a source is
mapped once per integration (its uniqueness claim). Each change is an event the sign-in role
cache listens for."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from uuid import UUID, uuid4

from commands.application import GovernanceApplication
from commands.authorization import Permission
from commands.context import CommandContext
from commands.preamble import CommandPreamble
from domain.errors import NotFound, ValidationFailed
from domain.integration.aggregate import Integration
from domain.role_mapping import RoleMapping


@dataclass(frozen=True)
class CreateRoleMapping:
    integration_id: object
    source_type: object
    source_value: object
    maci_role: object
    priority: object = 100


class RoleMappingCommands:
    def __init__(self, app: GovernanceApplication, constitutional_hash: str) -> None:
        self._app = app
        self._preamble = CommandPreamble(app, constitutional_hash)

    def create(
        self, ctx: CommandContext, tenant_id: UUID, command: CreateRoleMapping
    ) -> RoleMapping:
        mapping_id = uuid4()
        meta = self._preamble.begin(
            ctx, Permission.ROLE_MAPPING_MANAGE, tenant_id, "create_role_mapping", tenant_id
        )
        integration_id = _uuid("integration_id", command.integration_id)
        self._integration(tenant_id, integration_id)
        mapping = RoleMapping.define(
            mapping_id=mapping_id,
            integration_id=integration_id,
            source_type=command.source_type,
            source_value=command.source_value,
            maci_role=command.maci_role,
            priority=command.priority,
            meta=meta,
        )
        self._app.save_for(tenant_id, mapping, claims=[mapping.claim])
        return mapping

    def update(
        self, ctx: CommandContext, tenant_id: UUID, mapping_id: UUID, changes: dict[str, Any]
    ) -> tuple[RoleMapping, list[str]]:
        meta = self._preamble.begin(
            ctx, Permission.ROLE_MAPPING_MANAGE, tenant_id, "update_role_mapping", tenant_id
        )
        mapping = self.load(tenant_id, mapping_id)
        old_claim = mapping.claim
        updated = mapping.change(changes, meta)
        moved = mapping.claim != old_claim
        self._app.save_for(
            tenant_id,
            mapping,
            claims=[mapping.claim] if moved else [],
            releases=[old_claim] if moved else [],
        )
        return mapping, updated

    def delete(self, ctx: CommandContext, tenant_id: UUID, mapping_id: UUID) -> RoleMapping:
        meta = self._preamble.begin(
            ctx, Permission.ROLE_MAPPING_MANAGE, tenant_id, "delete_role_mapping", tenant_id
        )
        mapping = self.load(tenant_id, mapping_id)
        mapping.delete(meta)
        self._app.save_for(tenant_id, mapping, releases=[mapping.claim])
        return mapping

    def load(self, tenant_id: UUID, mapping_id: UUID) -> RoleMapping:
        """A live mapping of the tenant; NotFound otherwise."""
        try:
            mapping = self._app.load(tenant_id, mapping_id, RoleMapping)
        except NotFound:
            raise NotFound("role mapping not found", {"mapping_id": str(mapping_id)}) from None
        if mapping.deleted or mapping.tenant_id != tenant_id:
            raise NotFound("role mapping not found", {"mapping_id": str(mapping_id)})
        return mapping

    def _integration(self, tenant_id: UUID, integration_id: UUID) -> Integration:
        try:
            integration = self._app.load(tenant_id, integration_id, Integration)
        except NotFound:
            integration = None
        if integration is None or integration.archived or integration.tenant_id != tenant_id:
            raise NotFound("integration not found", {"integration_id": str(integration_id)})
        return integration


def _uuid(field: str, value: object) -> UUID:
    try:
        return UUID(str(value))
    except ValueError:
        raise ValidationFailed.field(field, "must be a UUID") from None
