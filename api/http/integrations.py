"""Enterprise integrations of a tenant: create, list, read (secrets redacted), update (partial
config merge), delete (archive), test the connection for real, and a health summary.

Writes and tests go through `IntegrationCommands` (synchronous, in a worker thread) and answer
from the aggregate; reads query the `enterprise_integrations` read model in a session scoped to
the tenant. Managing and testing needs the tenant's EXECUTIVE (or a platform EXECUTIVE); reading
and health, any role of the tenant. Another tenant's integration is 404.
"""

from __future__ import annotations

from datetime import UTC
from functools import partial
from typing import Annotated, Any
from uuid import UUID

import msgspec
from litestar import Controller, Request, Response, delete, get, patch, post
from litestar.openapi import ResponseSpec
from litestar.openapi.spec import Schema
from litestar.params import Body, Parameter
from msgspec import UNSET

from api.http import examples as ex
from api.http.command_calls import HashHeader, IdempotencyKey, command_context, in_thread
from api.http.dto import ConstitutionalHashBody
from api.http.integration_dto import (
    INTEGRATION_UPDATABLE,
    CreateIntegrationRequest,
    HealthSummary,
    IntegrationCreated,
    IntegrationDetail,
    IntegrationHealth,
    IntegrationList,
    IntegrationSummary,
    IntegrationTestResult,
    IntegrationTypeName,
    IntegrationUpdated,
    TestDetails,
    UpdateIntegrationRequest,
)
from api.http.services import ApiServices
from commands.authorization import Permission, authorize
from commands.context import Principal
from commands.integrations import CreateIntegration, IntegrationCommands
from domain.errors import NotFound
from projections.integrations import find_integration, list_integrations

_SEVERITY = ("healthy", "unknown", "degraded", "unhealthy")  # the summary is the worst of these

LDAP_EXAMPLE = {
    "integration_type": "ldap",
    "integration_name": "Corporate LDAP",
    "config": {
        "server_url": "ldaps://ldap.acme.com:636",
        "base_dn": "dc=acme,dc=com",
        "bind_dn": "cn=acgs2,ou=services,dc=acme,dc=com",
        "bind_password": "secret123",
        "user_search_filter": "(uid={username})",
        "group_search_filter": "(memberUid={username})",
        "tls_verify": True,
        "connection_pool_size": 10,
    },
    "constitutional_hash": ex.HASH,
}
UPDATE_EXAMPLE = {"enabled": False, "config": {"bind_password": "newSecret456"}}


class IntegrationController(Controller):
    path = "/tenants/{tenant_id:uuid}/integrations"
    tags = ["integrations"]  # noqa: RUF012

    @post(
        "/",
        status_code=201,
        summary="Create an integration",
        description="The tenant's EXECUTIVE (or a platform EXECUTIVE). The config is checked "
        "against the type's schema (docs/integrations.md); every bad field is listed. Secret "
        "fields are encrypted before anything is stored. Honours Idempotency-Key.",
        responses={
            201: ResponseSpec(IntegrationCreated, description="Created"),
            **ex.refusals(
                "VALIDATION_ERROR",
                "INTEGRATION_NAME_TAKEN",
                "NOT_FOUND",
                "FORBIDDEN",
                "IDEMPOTENCY_KEY_REUSED",
                *ex.WRITE,
            ),
        },
    )
    async def create_integration(
        self,
        request: Request[Any, Any, Any],
        tenant_id: UUID,
        data: Annotated[CreateIntegrationRequest, Body(examples=ex.example("LDAP", LDAP_EXAMPLE))],
        principal: Principal,
        api: ApiServices,
        constitutional_hash: HashHeader = None,
        idempotency_key: IdempotencyKey = None,
    ) -> Response[IntegrationCreated]:
        ctx = command_context(request, principal, data.constitutional_hash, constitutional_hash)
        command = CreateIntegration(
            integration_type=data.integration_type,
            integration_name=data.integration_name,
            config=data.config,
            enabled=True if data.enabled is UNSET else data.enabled,
        )

        async def create() -> Response[Any]:
            integration = await in_thread(partial(_commands(api).create, ctx, tenant_id, command))
            body = IntegrationCreated.of(integration, api.constitutional_hash)
            return Response(body, status_code=201)

        return await api.idempotency.run(request, principal, idempotency_key, create)

    @get(
        "/",
        summary="List a tenant's integrations",
        description="Any role of the tenant. Filters: integration_type, enabled.",
        responses=ex.refusals("VALIDATION_ERROR", "NOT_FOUND"),
    )
    async def list_integrations(
        self,
        tenant_id: UUID,
        principal: Principal,
        api: ApiServices,
        integration_type: Annotated[
            IntegrationTypeName | None, Parameter(query="integration_type", required=False)
        ] = None,
        enabled: Annotated[bool | None, Parameter(query="enabled", required=False)] = None,
    ) -> IntegrationList:
        authorize(principal, Permission.INTEGRATION_READ, tenant_id)
        await _require_tenant(api, tenant_id)
        async with api.database.tenant_session(tenant_id) as conn:
            rows = await list_integrations(conn, integration_type=integration_type, enabled=enabled)
        return IntegrationList(
            integrations=[IntegrationSummary.of(r) for r in rows],
            total=len(rows),
            constitutional_hash=api.constitutional_hash,
        )

    @get(
        "/health",
        summary="Health of a tenant's integrations",
        description="Any role of the tenant. Each integration's last health status and check "
        "time and its circuit breaker; overall_status is the worst among enabled ones "
        "(healthy < unknown < degraded < unhealthy; unknown when none is enabled).",
        responses=ex.refusals("NOT_FOUND"),
    )
    async def integrations_health(
        self, tenant_id: UUID, principal: Principal, api: ApiServices
    ) -> HealthSummary:
        authorize(principal, Permission.INTEGRATION_HEALTH, tenant_id)
        await _require_tenant(api, tenant_id)
        async with api.database.tenant_session(tenant_id) as conn:
            rows = await list_integrations(conn, integration_type=None, enabled=None)
        breakers = api.system.breakers
        items = [
            IntegrationHealth(
                **msgspec.structs.asdict(IntegrationSummary.of(r)),
                circuit_breaker=breakers.state(r["integration_id"]).value if breakers else "closed",
            )
            for r in rows
        ]
        counts = {s: sum(1 for i in items if i.health_status == s) for s in _SEVERITY}
        enabled = [i.health_status for i in items if i.enabled]
        overall = max(enabled, key=_SEVERITY.index) if enabled else "unknown"
        return HealthSummary(
            tenant_id=tenant_id,
            overall_status=overall,  # type: ignore[arg-type]
            counts=counts,
            integrations=items,
            constitutional_hash=api.constitutional_hash,
        )

    @get(
        "/{integration_id:uuid}",
        summary="Read an integration (secrets redacted)",
        description="Any role of the tenant. Secret fields read ***REDACTED***.",
        responses=ex.refusals("NOT_FOUND"),
    )
    async def get_integration(
        self, tenant_id: UUID, integration_id: UUID, principal: Principal, api: ApiServices
    ) -> IntegrationDetail:
        authorize(principal, Permission.INTEGRATION_READ, tenant_id)
        async with api.database.tenant_session(tenant_id) as conn:
            row = await find_integration(conn, integration_id)
        if row is None:
            raise NotFound("integration not found", {"integration_id": str(integration_id)})
        return IntegrationDetail.of(row)

    @patch(
        "/{integration_id:uuid}",
        summary="Update an integration",
        description="The tenant's EXECUTIVE. integration_name, enabled, and config merged key "
        "by key (a key set to null falls back to its default). updated_fields names config "
        "keys as config.<key>.",
        responses={
            200: ResponseSpec(IntegrationUpdated, description="Updated"),
            **ex.refusals(
                "VALIDATION_ERROR",
                "NOT_FOUND",
                "FORBIDDEN",
                "INTEGRATION_NAME_TAKEN",
                "CONCURRENT_MODIFICATION",
                *ex.WRITE,
            ),
        },
    )
    async def update_integration(
        self,
        request: Request[Any, Any, Any],
        tenant_id: UUID,
        integration_id: UUID,
        data: Annotated[
            UpdateIntegrationRequest,
            Body(
                examples=ex.example("new password", UPDATE_EXAMPLE),
                schema_extra={"any_of": [Schema(required=[f]) for f in INTEGRATION_UPDATABLE]},
            ),
        ],
        principal: Principal,
        api: ApiServices,
        constitutional_hash: HashHeader = None,
    ) -> IntegrationUpdated:
        ctx = command_context(request, principal, data.constitutional_hash, constitutional_hash)
        result = await in_thread(
            partial(_commands(api).update, ctx, tenant_id, integration_id, data.changes())
        )
        return IntegrationUpdated(
            integration_id=integration_id,
            updated_fields=result.updated_fields,
            updated_at=result.integration.modified_on.astimezone(UTC),
            constitutional_hash=api.constitutional_hash,
        )

    @delete(
        "/{integration_id:uuid}",
        status_code=204,
        summary="Delete (archive) an integration",
        description="The tenant's EXECUTIVE. Archived for audit; its name is free again; its "
        "secrets are crypto-shredded when the retention (365 days) has passed.",
        responses=ex.refusals("NOT_FOUND", "FORBIDDEN", "CONCURRENT_MODIFICATION", *ex.WRITE),
    )
    async def delete_integration(
        self,
        request: Request[Any, Any, Any],
        tenant_id: UUID,
        integration_id: UUID,
        principal: Principal,
        api: ApiServices,
        constitutional_hash: HashHeader = None,
    ) -> None:
        ctx = command_context(request, principal, UNSET, constitutional_hash)
        await in_thread(partial(_commands(api).archive, ctx, tenant_id, integration_id))

    @post(
        "/{integration_id:uuid}/test",
        status_code=200,
        summary="Test an integration's connection",
        description="The tenant's EXECUTIVE. Connects for real with a bounded timeout (LDAP: "
        "connect, TLS, service bind, one search; OIDC: discovery and JWKS; SAML: metadata and "
        "certificates). 503 INTEGRATION_UNREACHABLE, 422 INTEGRATION_AUTH_FAILED (the "
        "integration's credentials), 503 DEPENDENCY_UNAVAILABLE while its circuit breaker is "
        "open. The outcome updates health_status and last_health_check.",
        responses={
            200: ResponseSpec(IntegrationTestResult, description="Tested"),
            **ex.refusals(
                "NOT_FOUND",
                "FORBIDDEN",
                "INTEGRATION_UNREACHABLE",
                "INTEGRATION_AUTH_FAILED",
                "DEPENDENCY_UNAVAILABLE",
                *ex.WRITE,
            ),
        },
    )
    async def test_integration(
        self,
        request: Request[Any, Any, Any],
        tenant_id: UUID,
        integration_id: UUID,
        principal: Principal,
        api: ApiServices,
        data: Annotated[
            ConstitutionalHashBody | None,
            Body(examples=ex.example("hash in the body", {"constitutional_hash": ex.HASH})),
        ] = None,
        constitutional_hash: HashHeader = None,
    ) -> IntegrationTestResult:
        in_body = data.constitutional_hash if data is not None else UNSET
        ctx = command_context(request, principal, in_body, constitutional_hash)
        outcome = await in_thread(partial(_commands(api).test, ctx, tenant_id, integration_id))
        result = outcome.result
        return IntegrationTestResult(
            integration_id=integration_id,
            test_result="success" if result.failure is None else "failure",
            test_details=TestDetails(**result.details()),
            message=result.message,
            health_status=result.health.value,
            tested_at=outcome.tested_at,
            constitutional_hash=api.constitutional_hash,
        )


def _commands(api: ApiServices) -> IntegrationCommands:
    commands = api.system.integrations
    assert commands is not None
    return commands


async def _require_tenant(api: ApiServices, tenant_id: UUID) -> None:
    if await api.directory.row(tenant_id) is None:
        raise NotFound("tenant not found", {"tenant_id": str(tenant_id)})
