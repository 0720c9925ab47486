"""Role mappings of a tenant: which directory group (or SAML attribute, OAuth scope, OIDC claim
value) of which integration gives which MACI role, at which priority (a larger number wins).

Writes go through `RoleMappingCommands` (the tenant's EXECUTIVE, or a platform EXECUTIVE) and
answer from the aggregate; reads query the `tenant_role_mappings` read model (any role of the
tenant). A mapping or integration of another tenant is 404.
"""

from __future__ import annotations

from datetime import UTC, datetime
from functools import partial
from typing import Annotated, Any
from uuid import UUID

import msgspec
from litestar import Controller, Request, Response, delete, get, patch, post
from litestar.openapi import ResponseSpec
from litestar.params import Body
from msgspec import UNSET, UnsetType

from api.http import examples as ex
from api.http.command_calls import HashHeader, IdempotencyKey, command_context, in_thread
from api.http.dto import HashValue
from api.http.services import ApiServices
from commands.authorization import Permission, authorize
from commands.context import Principal
from commands.role_mappings import CreateRoleMapping, RoleMappingCommands
from domain.errors import NotFound
from domain.role_mapping import RoleMapping
from projections.role_mappings import find_role_mapping, list_role_mappings

EXAMPLE = {
    "integration_id": "7d3c0c52-8f8b-4a51-9a43-2f6f7b1f6a10",
    "source_type": "ldap_group",
    "source_value": "cn=governance-admins,ou=groups,dc=acme,dc=com",
    "maci_role": "EXECUTIVE",
    "priority": 10,
    "constitutional_hash": ex.HASH,
}


class CreateRoleMappingRequest(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    integration_id: UUID
    source_type: str
    source_value: str
    maci_role: str
    priority: int = 100
    constitutional_hash: HashValue | UnsetType = UNSET


class UpdateRoleMappingRequest(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    source_value: str | UnsetType = UNSET
    maci_role: str | UnsetType = UNSET
    priority: int | UnsetType = UNSET
    constitutional_hash: HashValue | UnsetType = UNSET

    def changes(self) -> dict[str, Any]:
        return {
            f: getattr(self, f)
            for f in ("source_value", "maci_role", "priority")
            if getattr(self, f) is not UNSET
        }


class RoleMappingBody(msgspec.Struct, kw_only=True):
    mapping_id: UUID
    tenant_id: UUID
    integration_id: UUID
    source_type: str
    source_value: str
    maci_role: str
    priority: int
    created_at: datetime
    constitutional_hash: str

    @classmethod
    def of(cls, mapping: RoleMapping, constitutional_hash: str) -> RoleMappingBody:
        return cls(
            mapping_id=mapping.id,
            tenant_id=mapping.tenant_id,
            integration_id=mapping.integration_id,
            source_type=mapping.source_type,
            source_value=mapping.source_value,
            maci_role=mapping.maci_role.value,
            priority=mapping.priority,
            created_at=mapping.created_on.astimezone(UTC),
            constitutional_hash=constitutional_hash,
        )

    @classmethod
    def row(cls, row: dict[str, Any]) -> RoleMappingBody:
        return cls(
            mapping_id=row["mapping_id"],
            tenant_id=row["tenant_id"],
            integration_id=row["integration_id"],
            source_type=row["source_type"],
            source_value=row["source_value"],
            maci_role=row["maci_role"],
            priority=row["priority"],
            created_at=row["created_at"].astimezone(UTC),
            constitutional_hash=row["constitutional_hash"],
        )


class RoleMappingUpdated(RoleMappingBody, kw_only=True):
    updated_fields: list[str]


class RoleMappingList(msgspec.Struct, kw_only=True):
    role_mappings: list[RoleMappingBody]
    total: int
    constitutional_hash: str


def _commands(api: ApiServices) -> RoleMappingCommands:
    assert api.system.role_mappings is not None  # built by api.bootstrap.build
    return api.system.role_mappings


class RoleMappingController(Controller):
    path = "/tenants/{tenant_id:uuid}/role-mappings"
    tags = ["role-mappings"]  # noqa: RUF012

    @post(
        "/",
        status_code=201,
        summary="Create a role mapping",
        description="The tenant's EXECUTIVE. The integration must belong to the tenant. "
        "source_type: ldap_group (a group DN, compared case-insensitively), saml_attribute, "
        "oauth_scope, oidc_claim. A larger priority wins. Honours Idempotency-Key.",
        responses={
            201: ResponseSpec(RoleMappingBody, description="Created"),
            **ex.refusals(
                "VALIDATION_ERROR", "ROLE_MAPPING_EXISTS", "NOT_FOUND", "FORBIDDEN", *ex.WRITE
            ),
        },
    )
    async def create_role_mapping(
        self,
        request: Request[Any, Any, Any],
        tenant_id: UUID,
        data: Annotated[CreateRoleMappingRequest, Body(examples=ex.example("LDAP group", EXAMPLE))],
        principal: Principal,
        api: ApiServices,
        constitutional_hash: HashHeader = None,
        idempotency_key: IdempotencyKey = None,
    ) -> Response[RoleMappingBody]:
        ctx = command_context(request, principal, data.constitutional_hash, constitutional_hash)
        command = CreateRoleMapping(
            integration_id=data.integration_id,
            source_type=data.source_type,
            source_value=data.source_value,
            maci_role=data.maci_role,
            priority=data.priority,
        )

        async def create() -> Response[Any]:
            mapping = await in_thread(partial(_commands(api).create, ctx, tenant_id, command))
            return Response(RoleMappingBody.of(mapping, api.constitutional_hash), status_code=201)

        return await api.idempotency.run(request, principal, idempotency_key, create)

    @get(
        "/",
        summary="List a tenant's role mappings",
        description="Any role of the tenant; highest priority first.",
        responses=ex.refusals("NOT_FOUND"),
    )
    async def list_role_mappings(
        self, tenant_id: UUID, principal: Principal, api: ApiServices
    ) -> RoleMappingList:
        authorize(principal, Permission.ROLE_MAPPING_READ, tenant_id)
        async with api.database.tenant_session(tenant_id) as conn:
            rows = await list_role_mappings(conn)
        return RoleMappingList(
            role_mappings=[RoleMappingBody.row(r) for r in rows],
            total=len(rows),
            constitutional_hash=api.constitutional_hash,
        )

    @get(
        "/{mapping_id:uuid}",
        summary="Read a role mapping",
        description="Any role of the tenant.",
        responses=ex.refusals("NOT_FOUND"),
    )
    async def get_role_mapping(
        self, tenant_id: UUID, mapping_id: UUID, principal: Principal, api: ApiServices
    ) -> RoleMappingBody:
        authorize(principal, Permission.ROLE_MAPPING_READ, tenant_id)
        async with api.database.tenant_session(tenant_id) as conn:
            row = await find_role_mapping(conn, mapping_id)
        if row is None:
            raise NotFound("role mapping not found", {"mapping_id": str(mapping_id)})
        return RoleMappingBody.row(row)

    @patch(
        "/{mapping_id:uuid}",
        summary="Change a role mapping",
        description="The tenant's EXECUTIVE: source_value, maci_role, priority.",
        responses={
            200: ResponseSpec(RoleMappingUpdated, description="Updated"),
            **ex.refusals(
                "VALIDATION_ERROR", "ROLE_MAPPING_EXISTS", "NOT_FOUND", "FORBIDDEN", *ex.WRITE
            ),
        },
    )
    async def update_role_mapping(
        self,
        request: Request[Any, Any, Any],
        tenant_id: UUID,
        mapping_id: UUID,
        data: UpdateRoleMappingRequest,
        principal: Principal,
        api: ApiServices,
        constitutional_hash: HashHeader = None,
    ) -> RoleMappingUpdated:
        ctx = command_context(request, principal, data.constitutional_hash, constitutional_hash)
        mapping, updated = await in_thread(
            partial(_commands(api).update, ctx, tenant_id, mapping_id, data.changes())
        )
        body = RoleMappingBody.of(mapping, api.constitutional_hash)
        return RoleMappingUpdated(**msgspec.structs.asdict(body), updated_fields=updated)

    @delete(
        "/{mapping_id:uuid}",
        status_code=204,
        summary="Delete a role mapping",
        description="The tenant's EXECUTIVE; the constitutional hash in X-Constitutional-Hash. "
        "Sign-in stops granting its role at once (the role cache listens for the change).",
        responses=ex.refusals("NOT_FOUND", "FORBIDDEN", "CONCURRENT_MODIFICATION", *ex.WRITE),
    )
    async def delete_role_mapping(
        self,
        request: Request[Any, Any, Any],
        tenant_id: UUID,
        mapping_id: UUID,
        principal: Principal,
        api: ApiServices,
        constitutional_hash: HashHeader = None,
    ) -> None:
        ctx = command_context(request, principal, UNSET, constitutional_hash)
        await in_thread(partial(_commands(api).delete, ctx, tenant_id, mapping_id))
