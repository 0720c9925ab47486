"""The console's integration pages: list with health, the LDAP form (create and edit), the test
button."""

from __future__ import annotations

from functools import partial
from typing import Any
from uuid import UUID

from litestar import Request, Response, get, post

from api.console.rendering import (
    PREFIX,
    Pending,
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
from commands.authorization import Permission, authorize
from commands.integrations import CreateIntegration, IntegrationCommands
from domain.errors import DomainError, Forbidden, NotFound
from projections.integrations import find_integration, list_integrations

LDAP_TEXT_FIELDS = ("server_url", "base_dn", "bind_dn", "user_search_filter", "group_search_filter")


def _commands(request: Request[Any, Any, Any]) -> IntegrationCommands:
    commands = api_of(request).system.integrations
    assert commands is not None
    return commands


@get("/tenants/{tenant_id:uuid}/integrations")
async def integrations_page(request: Request[Any, Any, Any], tenant_id: UUID) -> Response[str]:
    who = await who_of(request)
    authorize(who.principal, Permission.INTEGRATION_READ, tenant_id)
    row = await tenant_row(request, tenant_id)
    async with api_of(request).database.tenant_session(tenant_id) as conn:
        rows = await list_integrations(conn, integration_type=None, enabled=None)
    breakers = api_of(request).system.breakers
    for r in rows:
        r["circuit_breaker"] = breakers.state(r["integration_id"]).value if breakers else "closed"
    return page(request, "integrations.html", who=who, tenant=row, integrations=rows)


def _ldap_config(form: dict[str, str], *, editing: bool) -> dict[str, Any]:
    config: dict[str, Any] = {k: form[k] for k in LDAP_TEXT_FIELDS if form.get(k)}
    if form.get("bind_password") or not editing:
        config["bind_password"] = form.get("bind_password", "")
    if form.get("ca_cert_pem", "").strip():
        config["ca_cert_pem"] = form["ca_cert_pem"].replace("\r\n", "\n")
    config["tls_verify"] = form.get("tls_verify") == "on"
    return config


@get("/tenants/{tenant_id:uuid}/integrations/new")
async def new_integration_page(request: Request[Any, Any, Any], tenant_id: UUID) -> Response[str]:
    who = await who_of(request)
    authorize(who.principal, Permission.INTEGRATION_MANAGE, tenant_id)
    row = await tenant_row(request, tenant_id)
    values = {"tls_verify": "on", "user_search_filter": "(uid={username})"}
    return page(
        request, "integration_form.html", who=who, tenant=row, integration=None,
        values=values, errors={},
    )  # fmt: skip


@post("/tenants/{tenant_id:uuid}/integrations")
async def create_integration(request: Request[Any, Any, Any], tenant_id: UUID) -> Response[Any]:
    who = await who_of(request)
    form = await read_form(request)
    row = await tenant_row(request, tenant_id)
    command = CreateIntegration(
        integration_type="ldap",
        integration_name=form.get("integration_name", ""),
        config=_ldap_config(form, editing=False),
        enabled=form.get("enabled", "on") == "on",
    )
    try:
        integration = await in_thread(
            partial(_commands(request).create, context_of(who, form), tenant_id, command)
        )
    except DomainError as refused:
        if isinstance(refused, Forbidden):
            raise
        values = {k: v for k, v in form.items() if k != "bind_password"}
        errors = field_errors(refused) or {"form": refused.message}
        return page(
            request, "integration_form.html", who=who, tenant=row, integration=None,
            values=values, errors=errors, status=422,
        )  # fmt: skip
    return go(f"{PREFIX}/tenants/{tenant_id}/integrations/{integration.id}?created=1")


@get("/tenants/{tenant_id:uuid}/integrations/{integration_id:uuid}")
async def integration_page(
    request: Request[Any, Any, Any], tenant_id: UUID, integration_id: UUID
) -> Response[str]:
    who = await who_of(request)
    authorize(who.principal, Permission.INTEGRATION_READ, tenant_id)
    row = await tenant_row(request, tenant_id)
    async with api_of(request).database.tenant_session(tenant_id) as conn:
        integration = await find_integration(conn, integration_id)
    if integration is None:
        if request.query_params.get("created"):
            raise Pending("the integration")
        raise NotFound("integration not found", {"integration_id": str(integration_id)})
    config = dict(integration.get("config") or {})
    values = {k: v for k, v in config.items() if k != "bind_password"}
    values["integration_name"] = integration["integration_name"]
    values["tls_verify"] = "on" if config.get("tls_verify", True) else ""
    return page(
        request, "integration_form.html", who=who, tenant=row, integration=integration,
        values=values, errors={}, test=None,
    )  # fmt: skip


@post("/tenants/{tenant_id:uuid}/integrations/{integration_id:uuid}")
async def update_integration(
    request: Request[Any, Any, Any], tenant_id: UUID, integration_id: UUID
) -> Response[Any]:
    who = await who_of(request)
    form = await read_form(request)
    changes = {
        "integration_name": form.get("integration_name", ""),
        "config": _ldap_config(form, editing=True),
    }
    try:
        await in_thread(
            partial(
                _commands(request).update, context_of(who, form), tenant_id, integration_id, changes
            )
        )
    except DomainError as refused:
        if isinstance(refused, Forbidden | NotFound):
            raise
        row = await tenant_row(request, tenant_id)
        values = {k: v for k, v in form.items() if k != "bind_password"}
        errors = field_errors(refused) or {"form": refused.message}
        return page(
            request, "integration_form.html", who=who, tenant=row,
            integration={"integration_id": integration_id, **values}, values=values,
            errors=errors, status=422,
        )  # fmt: skip
    return go(f"{PREFIX}/tenants/{tenant_id}/integrations/{integration_id}")


@post("/tenants/{tenant_id:uuid}/integrations/{integration_id:uuid}/test")
async def test_integration(
    request: Request[Any, Any, Any], tenant_id: UUID, integration_id: UUID
) -> Response[Any]:
    who = await who_of(request)
    form = await read_form(request)
    try:
        outcome = await in_thread(
            partial(_commands(request).test, context_of(who, form), tenant_id, integration_id)
        )
        result = outcome.result
        test = {
            "ok": result.failure is None,
            "message": result.message,
            "health": result.health.value,
        }
    except DomainError as refused:
        if isinstance(refused, Forbidden | NotFound):
            raise
        test = {"ok": False, "message": refused.message, "health": "unhealthy"}
    if not request.headers.get("hx-request"):  # without script: back to the page, new health
        return go(f"{PREFIX}/tenants/{tenant_id}/integrations/{integration_id}")
    return page(request, "test_result.html", who=who, test=test)


ROUTES = [
    integrations_page,
    new_integration_page,
    create_integration,
    integration_page,
    update_integration,
    test_integration,
]
