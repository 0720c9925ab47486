"""The console's integration pages: list with health, the form of every integration type
(create and edit, built from the type's configuration schema by `api.console.config_form`;
secrets write-only), the test button."""

from __future__ import annotations

import json
from functools import partial
from typing import Any
from uuid import UUID

from litestar import Request, Response, get, post

from api.console.config_form import config_of, defaults_of, field_of, form_fields, values_of
from api.console.principal import SignedIn
from api.console.rendering import (
    PREFIX,
    Pending,
    api_of,
    context_of,
    go,
    page,
    read_form,
    tenant_row,
    who_of,
)
from api.http.command_calls import in_thread
from commands.authorization import Permission, authorize
from commands.integrations import CreateIntegration, IntegrationCommands
from domain.errors import DomainError, Forbidden, NotFound, ValidationFailed
from domain.integration.aggregate import redact_config
from domain.integration.schemas import SCHEMAS
from domain.integration.values import IntegrationType
from projections.integrations import find_integration, list_integrations

TYPE_NAMES = {
    "ldap": "LDAP directory",
    "saml": "SAML identity provider",
    "oidc": "OpenID Connect provider",
    "oauth": "OAuth 2.0 provider",
    "kafka": "Kafka cluster",
    "siem": "SIEM",
    "data_warehouse": "Data warehouse",
}


def _commands(request: Request[Any, Any, Any]) -> IntegrationCommands:
    commands = api_of(request).system.integrations
    assert commands is not None
    return commands


def _type(value: str | None) -> IntegrationType:
    try:
        return IntegrationType(value or "ldap")
    except ValueError:
        raise ValidationFailed.field("type", f"must be one of {', '.join(TYPE_NAMES)}") from None


def _errors(refused: DomainError) -> dict[str, str]:
    """The envelope's fields, each under the input it names (the form's own otherwise)."""
    errors: dict[str, str] = {}
    for problem in refused.details.get("fields", []):
        if "field" in problem:
            errors.setdefault(field_of(str(problem["field"])), problem["message"])
    return errors or {"form": refused.message}


def _form_page(
    request: Request[Any, Any, Any],
    who: SignedIn,
    tenant: Any,
    kind: IntegrationType,
    integration: dict[str, Any] | None,
    values: dict[str, str],
    errors: dict[str, str],
    *,
    stored_secrets: frozenset[str] = frozenset(),
    status: int = 200,
) -> Response[str]:
    fields = form_fields(SCHEMAS[kind])
    known = {f.name for f in fields} | {"integration_name", "enabled", "form"}
    return page(
        request, "integration_form.html", who=who, tenant=tenant, integration=integration,
        kind=kind.value, kind_name=TYPE_NAMES[kind.value], fields=fields, values=values,
        errors=errors, other_errors={k: v for k, v in errors.items() if k not in known},
        stored_secrets=stored_secrets, status=status,
    )  # fmt: skip


def _kept(form: dict[str, str], kind: IntegrationType) -> dict[str, str]:
    """The form's values to show again after a refusal: all but the secrets."""
    secrets = {f.name for f in form_fields(SCHEMAS[kind]) if f.secret}
    return {k: v for k, v in form.items() if k not in secrets}


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
    return page(
        request, "integrations.html", who=who, tenant=row, integrations=rows, types=TYPE_NAMES
    )


@get("/tenants/{tenant_id:uuid}/integrations/new")
async def new_integration_page(request: Request[Any, Any, Any], tenant_id: UUID) -> Response[str]:
    who = await who_of(request)
    authorize(who.principal, Permission.INTEGRATION_MANAGE, tenant_id)
    kind = _type(request.query_params.get("type"))
    row = await tenant_row(request, tenant_id)
    values = {**defaults_of(SCHEMAS[kind]), "enabled": "on"}
    return _form_page(request, who, row, kind, None, values, {})


@post("/tenants/{tenant_id:uuid}/integrations")
async def create_integration(request: Request[Any, Any, Any], tenant_id: UUID) -> Response[Any]:
    who = await who_of(request)
    form = await read_form(request)
    kind = _type(form.get("integration_type"))
    row = await tenant_row(request, tenant_id)
    command = CreateIntegration(
        integration_type=kind.value,
        integration_name=form.get("integration_name", ""),
        config=config_of(SCHEMAS[kind], form, editing=False),
        enabled=form.get("enabled") == "on",
    )
    try:
        integration = await in_thread(
            partial(_commands(request).create, context_of(who, form), tenant_id, command)
        )
    except DomainError as refused:
        if isinstance(refused, Forbidden):
            raise
        values = _kept(form, kind)
        return _form_page(request, who, row, kind, None, values, _errors(refused), status=422)
    return go(f"{PREFIX}/tenants/{tenant_id}/integrations/{integration.id}?created=1")


@get("/tenants/{tenant_id:uuid}/integrations/{integration_id:uuid}")
async def integration_page(
    request: Request[Any, Any, Any], tenant_id: UUID, integration_id: UUID
) -> Response[str]:
    who = await who_of(request)
    authorize(who.principal, Permission.INTEGRATION_READ, tenant_id)
    row = await tenant_row(request, tenant_id)
    integration, kind, config = await _stored(request, tenant_id, integration_id)
    values = values_of(SCHEMAS[kind], config)
    values["integration_name"] = integration["integration_name"]
    values["enabled"] = "on" if integration["enabled"] else ""
    stored = frozenset(k for k in SCHEMAS[kind].secret_fields if k in config)
    return _form_page(request, who, row, kind, integration, values, {}, stored_secrets=stored)


async def _stored(
    request: Request[Any, Any, Any], tenant_id: UUID, integration_id: UUID
) -> tuple[dict[str, Any], IntegrationType, dict[str, Any]]:
    """The integration's row, type and configuration (secrets redacted) from the read model."""
    async with api_of(request).database.tenant_session(tenant_id) as conn:
        integration = await find_integration(conn, integration_id)
    if integration is None:
        if request.query_params.get("created"):
            raise Pending("the integration")
        raise NotFound("integration not found", {"integration_id": str(integration_id)})
    kind = IntegrationType(integration["integration_type"])
    config = redact_config(kind.value, json.loads(integration["config_encrypted"]))
    return integration, kind, config


@post("/tenants/{tenant_id:uuid}/integrations/{integration_id:uuid}")
async def update_integration(
    request: Request[Any, Any, Any], tenant_id: UUID, integration_id: UUID
) -> Response[Any]:
    who = await who_of(request)
    form = await read_form(request)
    authorize(who.principal, Permission.INTEGRATION_MANAGE, tenant_id)
    integration, kind, config = await _stored(request, tenant_id, integration_id)
    changes = {
        "integration_name": form.get("integration_name", ""),
        "enabled": form.get("enabled") == "on",
        "config": config_of(SCHEMAS[kind], form, editing=True),
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
        stored = frozenset(k for k in SCHEMAS[kind].secret_fields if k in config)
        return _form_page(
            request, who, row, kind, integration, _kept(form, kind), _errors(refused),
            stored_secrets=stored, status=422,
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
