"""The console's tenant pages: list and search, create, one tenant with its quotas' live usage,
edit its quotas, suspend and reactivate, deactivate and purge (each after a confirmation page,
so they work without JavaScript)."""

from __future__ import annotations

from functools import partial
from typing import Any
from uuid import UUID

import msgspec
from litestar import Request, Response, get, post

from api.console.principal import SignedIn
from api.console.rendering import (
    PREFIX,
    api_of,
    context_of,
    field_errors,
    go,
    page,
    read_form,
    tenant_row,
    who_of,
)
from api.http.command_calls import in_thread
from api.http.dto import CreateTenantRequest, UpdateTenantRequest
from api.http.quotas.storage import BYTES_PER_GB
from api.http.services import ApiServices
from commands.authorization import Permission, authorize
from commands.tenants import CreateTenant
from domain.errors import DomainError, ValidationFailed
from domain.tenant.values import Quotas
from projections.tenants import list_tenants


@get("/tenants")
async def tenants_page(request: Request[Any, Any, Any]) -> Response[str]:
    who = await who_of(request)
    authorize(who.principal, Permission.TENANT_LIST)
    search = request.query_params.get("q", "")[:256].strip()
    api = api_of(request)
    async with api.database.platform_session() as conn:
        rows, total = await list_tenants(
            conn, status=None, limit=200, offset=0, search=search or None
        )
    template = "tenant_rows.html" if request.headers.get("hx-request") else "tenants.html"
    return page(request, template, who=who, tenants=rows, total=total, search=search)


@get("/tenants/new")
async def new_tenant_page(request: Request[Any, Any, Any]) -> Response[str]:
    who = await who_of(request)
    authorize(who.principal, Permission.TENANT_CREATE)
    return page(request, "tenant_new.html", who=who, values={}, errors={})


@post("/tenants")
async def create_tenant(request: Request[Any, Any, Any]) -> Response[Any]:
    who = await who_of(request)
    form = await read_form(request)
    names = ("tenant_name", "tenant_slug", "admin_email", "billing_plan")
    quota_names = ("max_requests_per_minute", "max_storage_gb", "max_concurrent_connections")
    values = {k: form.get(k, "") for k in (*names, *quota_names)}
    body: dict[str, Any] = {k: values[k] for k in names if values[k]}
    errors: dict[str, str] = {}
    for name in quota_names:
        if values[name]:
            try:
                body[name] = int(values[name])
            except ValueError:
                errors[name] = "must be a whole number"
    api = api_of(request)
    try:
        if errors:
            raise ValidationFailed("some fields are invalid")
        data = msgspec.convert(body, CreateTenantRequest)
        command = CreateTenant(
            tenant_name=data.tenant_name,
            tenant_slug=data.tenant_slug,
            admin_email=data.admin_email,
            billing_plan="standard" if data.billing_plan is msgspec.UNSET else data.billing_plan,
            quotas=data.quotas(),
        )
        tenant = await in_thread(partial(api.tenants.create, context_of(who, form), command))
    except msgspec.ValidationError as invalid:
        errors["form"] = str(invalid)
    except DomainError as refused:
        errors.update(field_errors(refused) or {"form": refused.message})
    if errors:
        return page(request, "tenant_new.html", who=who, values=values, errors=errors, status=422)
    api.directory.remember(tenant)
    return go(f"{PREFIX}/tenants/{tenant.id}")


async def _usage(api: ApiServices, tenant_id: UUID) -> dict[str, Any]:
    used = await api.storage.bytes_used(tenant_id)
    return {
        "requests_per_minute": await api.rate_limiter.current(tenant_id),
        "storage_gb": round(used / BYTES_PER_GB, 6),
        "connections": await api.concurrency.current(tenant_id),
    }


async def _tenant(request: Request[Any, Any, Any], who: SignedIn, tenant_id: UUID) -> Any:
    authorize(who.principal, Permission.TENANT_READ, tenant_id)
    return await tenant_row(request, tenant_id)


@get("/tenants/{tenant_id:uuid}")
async def tenant_page(request: Request[Any, Any, Any], tenant_id: UUID) -> Response[str]:
    who = await who_of(request)
    row = await _tenant(request, who, tenant_id)
    usage = await _usage(api_of(request), tenant_id)
    return page(request, "tenant.html", who=who, tenant=row, usage=usage, message=None)


@get("/tenants/{tenant_id:uuid}/usage")
async def tenant_usage(request: Request[Any, Any, Any], tenant_id: UUID) -> Response[str]:
    who = await who_of(request)
    row = await _tenant(request, who, tenant_id)
    usage = await _usage(api_of(request), tenant_id)
    return page(request, "usage.html", who=who, tenant=row, usage=usage)


@post("/tenants/{tenant_id:uuid}/status")
async def tenant_status(request: Request[Any, Any, Any], tenant_id: UUID) -> Response[Any]:
    who = await who_of(request)
    form = await read_form(request)
    api = api_of(request)
    ctx = context_of(who, form)
    action = form.get("action")
    if action == "suspend":
        changes = msgspec.convert({"status": "suspended"}, UpdateTenantRequest).changes()
        result = await in_thread(partial(api.tenants.update, ctx, tenant_id, changes))
        api.directory.remember(result.tenant)
    elif action == "reactivate":
        api.directory.remember(await in_thread(partial(api.tenants.reactivate, ctx, tenant_id)))
    else:
        raise ValidationFailed.field("action", "must be suspend or reactivate")
    return go(f"{PREFIX}/tenants/{tenant_id}")


QUOTAS = {
    "max_requests_per_minute": "Requests per minute",
    "max_storage_gb": "Storage (GB)",
    "max_concurrent_connections": "Concurrent requests",
}


def _quota_changes(form: dict[str, str]) -> tuple[dict[str, Any], dict[str, str]]:
    """The three quotas of the form, checked by the domain's own rules (`Quotas`), every bad
    one listed at once."""
    typed: dict[str, Any] = {}
    for name in QUOTAS:
        raw = form.get(name, "").strip()
        try:
            typed[name] = int(raw)
        except ValueError:
            typed[name] = raw  # the domain says what is wrong with it
    errors: dict[str, str] = {}
    try:
        Quotas(**typed)
    except ValidationFailed as invalid:
        errors = field_errors(invalid)
    errors.update({name: "required" for name in QUOTAS if typed[name] == ""})
    return ({} if errors else typed), errors


@get("/tenants/{tenant_id:uuid}/quotas")
async def quotas_page(request: Request[Any, Any, Any], tenant_id: UUID) -> Response[str]:
    who = await who_of(request)
    authorize(who.principal, Permission.TENANT_MANAGE_PLAN, tenant_id)
    row = await tenant_row(request, tenant_id)
    values = {name: str(row[name]) for name in QUOTAS}
    return page(
        request, "tenant_quotas.html", who=who, tenant=row, quotas=QUOTAS, values=values, errors={}
    )


@post("/tenants/{tenant_id:uuid}/quotas")
async def update_quotas(request: Request[Any, Any, Any], tenant_id: UUID) -> Response[Any]:
    who = await who_of(request)
    authorize(who.principal, Permission.TENANT_MANAGE_PLAN, tenant_id)
    row = await tenant_row(request, tenant_id)
    form = await read_form(request)
    values = {name: form.get(name, "") for name in QUOTAS}
    changes, errors = _quota_changes(form)
    api = api_of(request)
    if not errors:
        try:
            result = await in_thread(
                partial(api.tenants.update, context_of(who, form), tenant_id, changes)
            )
        except DomainError as refused:
            errors = field_errors(refused) or {"form": refused.message}
        else:
            api.directory.remember(result.tenant)
            return go(f"{PREFIX}/tenants/{tenant_id}")
    return page(
        request,
        "tenant_quotas.html",
        who=who,
        tenant=row,
        quotas=QUOTAS,
        values=values,
        errors=errors,
        status=422,
    )


ENDINGS = {"deactivate": False, "purge": True}  # the action and whether it is immediate


async def _confirm_page(
    request: Request[Any, Any, Any], tenant_id: UUID, action: str
) -> Response[str]:
    """The confirmation step of deactivating or purging (a page, so no script is needed)."""
    who = await who_of(request)
    authorize(who.principal, Permission.TENANT_DEACTIVATE, tenant_id)
    row = await tenant_row(request, tenant_id)
    return page(request, "tenant_confirm.html", who=who, tenant=row, action=action, errors={})


async def _end_tenant(
    request: Request[Any, Any, Any], tenant_id: UUID, action: str
) -> Response[Any]:
    who = await who_of(request)
    authorize(who.principal, Permission.TENANT_DEACTIVATE, tenant_id)
    row = await tenant_row(request, tenant_id)
    form = await read_form(request)
    if form.get("confirm_slug", "").strip() != row["tenant_slug"]:
        errors = {"confirm_slug": f"type the tenant's slug ({row['tenant_slug']}) to confirm"}
        return page(
            request,
            "tenant_confirm.html",
            who=who,
            tenant=row,
            action=action,
            values={"confirm_slug": form.get("confirm_slug", "")},
            errors=errors,
            status=422,
        )
    api = api_of(request)
    immediate = ENDINGS[action]
    ended = await in_thread(
        partial(api.tenants.deactivate, context_of(who, form), tenant_id, immediate=immediate)
    )
    api.directory.remember(ended)
    return go(f"{PREFIX}/tenants" if immediate else f"{PREFIX}/tenants/{tenant_id}")


@get("/tenants/{tenant_id:uuid}/deactivate")
async def confirm_deactivate(request: Request[Any, Any, Any], tenant_id: UUID) -> Response[str]:
    return await _confirm_page(request, tenant_id, "deactivate")


@post("/tenants/{tenant_id:uuid}/deactivate")
async def deactivate_tenant(request: Request[Any, Any, Any], tenant_id: UUID) -> Response[Any]:
    return await _end_tenant(request, tenant_id, "deactivate")


@get("/tenants/{tenant_id:uuid}/purge")
async def confirm_purge(request: Request[Any, Any, Any], tenant_id: UUID) -> Response[str]:
    return await _confirm_page(request, tenant_id, "purge")


@post("/tenants/{tenant_id:uuid}/purge")
async def purge_tenant(request: Request[Any, Any, Any], tenant_id: UUID) -> Response[Any]:
    return await _end_tenant(request, tenant_id, "purge")


ROUTES = [
    tenants_page,
    new_tenant_page,
    create_tenant,
    tenant_page,
    tenant_usage,
    tenant_status,
    quotas_page,
    update_quotas,
    confirm_deactivate,
    deactivate_tenant,
    confirm_purge,
    purge_tenant,
]
