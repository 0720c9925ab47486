"""Tenant management: create, list, read, update, deactivate or purge, reactivate.

Writes go through `TenantCommands` (synchronous, run in a worker thread) and answer from the
aggregate they return; reads query the `tenants` read model in a session scoped to the target
tenant (a platform-wide session only for the list). Authorization runs in the commands for writes
and here for reads, with the same permission table.
"""

from __future__ import annotations

from functools import partial
from typing import Annotated, Any
from uuid import UUID

from litestar import Controller, Request, Response, delete, get, patch, post
from litestar.openapi import ResponseSpec
from litestar.openapi.spec import Schema
from litestar.params import Body, Parameter
from msgspec import UNSET

from api.http import examples as ex
from api.http.command_calls import (
    HashHeader,
    IdempotencyKey,
    command_context,
    in_thread,
)
from api.http.dto import (
    UPDATABLE_FIELDS,
    ConstitutionalHashBody,
    CreateTenantRequest,
    TenantCreated,
    TenantDeactivated,
    TenantDetail,
    TenantList,
    TenantReactivated,
    TenantSummary,
    TenantUpdated,
    UpdateTenantRequest,
    UsageStats,
    WritableStatus,
)
from api.http.quotas.storage import BYTES_PER_GB
from api.http.services import API_ENDPOINT_TEMPLATE, ApiServices
from commands.authorization import Permission, authorize
from commands.context import Principal
from commands.tenants import CreateTenant
from domain.errors import NotFound
from projections.tenants import list_tenants

MAX_OFFSET = 2**31 - 1  # a list offset beyond PostgreSQL's range was a 500


class TenantController(Controller):
    path = "/tenants"
    tags = ["tenants"]  # noqa: RUF012

    @post(
        "/",
        status_code=201,
        summary="Create a tenant",
        description="Platform EXECUTIVE only. Quotas default to 1000 requests/min, 10 GB, 100 "
        "concurrent requests. Honours Idempotency-Key.",
        responses={
            201: ResponseSpec(
                TenantCreated, description="Created", examples=ex.example("created", ex.CREATED)
            ),
            **ex.refusals(
                "VALIDATION_ERROR",
                "INVALID_TENANT_SLUG",
                "TENANT_SLUG_TAKEN",
                "TENANT_NAME_TAKEN",
                "FORBIDDEN",
                "IDEMPOTENCY_KEY_REUSED",
                *ex.WRITE,
            ),
        },
    )
    async def create_tenant(
        self,
        request: Request[Any, Any, Any],
        data: Annotated[CreateTenantRequest, Body(examples=ex.example("Acme", ex.CREATE_REQUEST))],
        principal: Principal,
        api: ApiServices,
        constitutional_hash: HashHeader = None,
        idempotency_key: IdempotencyKey = None,
    ) -> Response[TenantCreated]:
        ctx = command_context(request, principal, data.constitutional_hash, constitutional_hash)
        command = CreateTenant(
            tenant_name=data.tenant_name,
            tenant_slug=data.tenant_slug,
            admin_email=data.admin_email,
            billing_plan="standard" if data.billing_plan is UNSET else data.billing_plan,
            quotas=data.quotas(),
        )

        async def create() -> Response[Any]:
            tenant = await in_thread(partial(api.tenants.create, ctx, command))
            api.directory.remember(tenant)
            endpoint = API_ENDPOINT_TEMPLATE.format(slug=tenant.tenant_slug)
            body = TenantCreated.of(tenant, api.constitutional_hash, endpoint)
            return Response(body, status_code=201)

        return await api.idempotency.run(request, principal, idempotency_key, create)

    @get(
        "/",
        summary="List tenants",
        description="Platform principals with EXECUTIVE, JUDICIAL or AUDITOR. Newest first.",
        responses={
            200: ResponseSpec(
                TenantList,
                description="A page of tenants",
                examples=ex.example("one page", ex.LIST),
            ),
            **ex.refusals("VALIDATION_ERROR", "FORBIDDEN"),
        },
    )
    async def list_tenants(
        self,
        principal: Principal,
        api: ApiServices,
        status: Annotated[WritableStatus | None, Parameter(query="status", required=False)] = None,
        limit: Annotated[int, Parameter(ge=1, le=1000)] = 50,
        offset: Annotated[int, Parameter(ge=0, le=MAX_OFFSET)] = 0,
    ) -> TenantList:
        authorize(principal, Permission.TENANT_LIST)
        async with api.database.platform_session() as conn:
            rows, total = await list_tenants(conn, status=status, limit=limit, offset=offset)
        return TenantList(
            tenants=[TenantSummary(**row) for row in rows],
            total=total,
            limit=limit,
            offset=offset,
            constitutional_hash=api.constitutional_hash,
        )

    @get(
        "/{tenant_id:uuid}",
        summary="Read a tenant with its live usage",
        description="The tenant's EXECUTIVE or a platform EXECUTIVE. Another tenant's id is 404. "
        "The row comes from the tenants read model (cached up to 2 s; a change made through "
        "the same API process shows once projected); usage_stats are live.",
        responses={
            200: ResponseSpec(
                TenantDetail, description="The tenant", examples=ex.example("a tenant", ex.DETAIL)
            ),
            **ex.refusals("NOT_FOUND", "FORBIDDEN"),
        },
    )
    async def get_tenant(
        self, tenant_id: UUID, principal: Principal, api: ApiServices
    ) -> TenantDetail:
        authorize(principal, Permission.TENANT_READ, tenant_id)
        row = await api.directory.row(tenant_id)
        if row is None:
            raise NotFound("tenant not found", {"tenant_id": str(tenant_id)})
        used = await api.storage.bytes_used(tenant_id)
        usage = UsageStats(
            current_requests_per_minute=await api.rate_limiter.current(tenant_id),
            current_storage_gb=round(used / BYTES_PER_GB, 6),
            current_connections=await api.concurrency.current(tenant_id),
        )
        return TenantDetail.of(row, usage)

    @patch(
        "/{tenant_id:uuid}",
        summary="Update a tenant",
        description="Name, admin email and sign-in settings (default_role: a MACI role or "
        "'none', which refuses a user no role mapping matches; access_token_ttl_seconds; "
        "refresh_token_ttl_seconds, at least the access lifetime): the tenant's EXECUTIVE. "
        "Billing plan, status and quotas: a platform EXECUTIVE. Every bad field is listed at "
        "once. Read-only fields (tenant_id, tenant_slug, created_at, "
        "updated_at, ...) are refused with 422.",
        responses={
            200: ResponseSpec(
                TenantUpdated,
                description="Updated",
                examples=ex.example("quota raised, suspended", ex.UPDATED),
            ),
            **ex.refusals(
                "VALIDATION_ERROR",
                "NOT_FOUND",
                "FORBIDDEN",
                "TENANT_NAME_TAKEN",
                "INVALID_STATE_TRANSITION",
                "CONCURRENT_MODIFICATION",
                *ex.WRITE,
            ),
        },
    )
    async def update_tenant(
        self,
        request: Request[Any, Any, Any],
        tenant_id: UUID,
        data: Annotated[
            UpdateTenantRequest,
            Body(
                examples=ex.example("suspend", ex.UPDATE_REQUEST),
                # at least one field to change (the hash alone changes nothing: 422)
                schema_extra={"any_of": [Schema(required=[f]) for f in UPDATABLE_FIELDS]},
            ),
        ],
        principal: Principal,
        api: ApiServices,
        constitutional_hash: HashHeader = None,
    ) -> TenantUpdated:
        ctx = command_context(request, principal, data.constitutional_hash, constitutional_hash)
        result = await in_thread(partial(api.tenants.update, ctx, tenant_id, data.changes()))
        api.directory.remember(result.tenant)
        return TenantUpdated(
            tenant_id=tenant_id,
            updated_fields=result.updated_fields,
            updated_at=result.tenant.modified_on,
            constitutional_hash=api.constitutional_hash,
        )

    @delete(
        "/{tenant_id:uuid}",
        status_code=202,
        summary="Deactivate a tenant (or purge it with immediate=true)",
        description="Platform EXECUTIVE only. Deactivation keeps the data for 30 days and can be "
        "undone with reactivate; immediate=true purges at once (status 'purged').",
        responses={
            202: ResponseSpec(
                TenantDeactivated,
                description="Deactivated or purged",
                examples=[
                    *ex.example("deactivated", ex.DEACTIVATED),
                    *ex.example("purged (immediate=true)", ex.PURGED),
                ],
            ),
            **ex.refusals(
                "NOT_FOUND",
                "FORBIDDEN",
                "INVALID_STATE_TRANSITION",
                "CONCURRENT_MODIFICATION",
                *ex.WRITE,
            ),
        },
    )
    async def deactivate_tenant(
        self,
        request: Request[Any, Any, Any],
        tenant_id: UUID,
        principal: Principal,
        api: ApiServices,
        constitutional_hash: HashHeader = None,
        immediate: bool = False,
    ) -> Response[TenantDeactivated]:
        ctx = command_context(request, principal, UNSET, constitutional_hash)
        tenant = await in_thread(
            partial(api.tenants.deactivate, ctx, tenant_id, immediate=immediate)
        )
        api.directory.remember(tenant)
        return Response(TenantDeactivated.of(tenant, api.constitutional_hash), status_code=202)

    @post(
        "/{tenant_id:uuid}/reactivate",
        status_code=200,
        summary="Reactivate a suspended or deactivated tenant",
        description="Platform EXECUTIVE only; possible until the tenant is purged. The body is "
        "optional (the hash may come in X-Constitutional-Hash). Honours Idempotency-Key.",
        responses={
            200: ResponseSpec(
                TenantReactivated,
                description="Active again",
                examples=ex.example("reactivated", ex.REACTIVATED),
            ),
            **ex.refusals(
                "NOT_FOUND",
                "FORBIDDEN",
                "INVALID_STATE_TRANSITION",
                "IDEMPOTENCY_KEY_REUSED",
                *ex.WRITE,
            ),
        },
    )
    async def reactivate_tenant(
        self,
        request: Request[Any, Any, Any],
        tenant_id: UUID,
        principal: Principal,
        api: ApiServices,
        data: Annotated[
            ConstitutionalHashBody | None,
            Body(examples=ex.example("hash in the body", {"constitutional_hash": ex.HASH})),
        ] = None,
        constitutional_hash: HashHeader = None,
        idempotency_key: IdempotencyKey = None,
    ) -> Response[TenantReactivated]:
        in_body = data.constitutional_hash if data is not None else UNSET
        ctx = command_context(request, principal, in_body, constitutional_hash)

        async def reactivate() -> Response[Any]:
            tenant = await in_thread(partial(api.tenants.reactivate, ctx, tenant_id))
            api.directory.remember(tenant)
            body = TenantReactivated(
                tenant_id=tenant_id,
                status=tenant.status.value,
                reactivated_at=tenant.modified_on,
                constitutional_hash=api.constitutional_hash,
            )
            return Response(body, status_code=200)

        return await api.idempotency.run(request, principal, idempotency_key, reactivate)
