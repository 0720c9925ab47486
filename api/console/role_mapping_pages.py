"""The console's role mapping page of a tenant: the mappings (highest priority first), a form to
add one, a delete button each, and the "which roles would this user get" preview.

A mapping's source type follows from its integration's type (an LDAP integration maps groups,
SAML attributes, OIDC claims, OAuth scopes), so a mapping is never made that sign-in would not
read. The preview computes the roles with the sign-in's own code (`SignIn.preview_roles`: the
same mappings and resolution, the tenant's default role when none matches)."""

from __future__ import annotations

from functools import partial
from typing import Any
from uuid import UUID

from litestar import Request, Response, get, post

from api.console.principal import SignedIn
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
from commands.role_mappings import CreateRoleMapping, RoleMappingCommands
from domain.errors import DomainError, Forbidden, ValidationFailed
from domain.maci import MaciRole
from projections.integrations import list_integrations
from projections.role_mappings import list_role_mappings

SOURCE_OF = {
    "ldap": "ldap_group",
    "saml": "saml_attribute",
    "oidc": "oidc_claim",
    "oauth": "oauth_scope",
}
SOURCE_NAMES = {
    "ldap_group": "directory group (DN)",
    "saml_attribute": "SAML attribute value",
    "oidc_claim": "OIDC claim value",
    "oauth_scope": "OAuth scope",
}
MAX_PREVIEW_VALUES = 200


def _commands(request: Request[Any, Any, Any]) -> RoleMappingCommands:
    commands = api_of(request).system.role_mappings
    assert commands is not None  # built by api.bootstrap.build
    return commands


async def _lists(
    request: Request[Any, Any, Any], tenant_id: UUID
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The tenant's identity integrations and its mappings (each with its integration's name)."""
    async with api_of(request).database.tenant_session(tenant_id) as conn:
        integrations = [
            i
            for i in await list_integrations(conn, integration_type=None, enabled=None)
            if i["integration_type"] in SOURCE_OF
        ]
        mappings = await list_role_mappings(conn)
    names = {i["integration_id"]: i["integration_name"] for i in integrations}
    for m in mappings:
        m["integration_name"] = names.get(m["integration_id"], str(m["integration_id"]))
        m["source_name"] = SOURCE_NAMES.get(m["source_type"], m["source_type"])
    return integrations, mappings


async def _page(
    request: Request[Any, Any, Any],
    who: SignedIn,
    tenant_id: UUID,
    *,
    values: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
    preview: dict[str, Any] | None = None,
    status: int = 200,
) -> Response[str]:
    row = await tenant_row(request, tenant_id)
    integrations, mappings = await _lists(request, tenant_id)
    created = request.query_params.get("created")
    if created and all(str(m["mapping_id"]) != created for m in mappings):
        raise Pending("the role mapping")
    deleted = request.query_params.get("deleted")
    if deleted and any(str(m["mapping_id"]) == deleted for m in mappings):
        raise Pending("the deletion")
    return page(
        request, "role_mappings.html", who=who, tenant=row, integrations=integrations,
        mappings=mappings, roles=[r.value for r in MaciRole], values=values or {"priority": "100"},
        errors=errors or {}, preview=preview, sources=SOURCE_OF, source_names=SOURCE_NAMES,
        status=status,
    )  # fmt: skip


@get("/tenants/{tenant_id:uuid}/role-mappings")
async def role_mappings_page(request: Request[Any, Any, Any], tenant_id: UUID) -> Response[str]:
    who = await who_of(request)
    authorize(who.principal, Permission.ROLE_MAPPING_READ, tenant_id)
    return await _page(request, who, tenant_id)


def _priority(text: str) -> int | str:
    try:
        return int(text.strip())
    except ValueError:
        return text  # the domain reports it with every other bad field


@post("/tenants/{tenant_id:uuid}/role-mappings")
async def create_role_mapping(request: Request[Any, Any, Any], tenant_id: UUID) -> Response[Any]:
    who = await who_of(request)
    form = await read_form(request)
    authorize(who.principal, Permission.ROLE_MAPPING_READ, tenant_id)
    integrations, _ = await _lists(request, tenant_id)
    kinds = {str(i["integration_id"]): i["integration_type"] for i in integrations}
    chosen = form.get("integration_id", "")
    command = CreateRoleMapping(
        integration_id=chosen,
        source_type=SOURCE_OF.get(kinds.get(chosen, ""), ""),
        source_value=form.get("source_value", ""),
        maci_role=form.get("maci_role", ""),
        priority=_priority(form.get("priority", "")),
    )
    try:
        if chosen not in kinds:
            raise ValidationFailed.field("integration_id", "choose an integration of this tenant")
        mapping = await in_thread(
            partial(_commands(request).create, context_of(who, form), tenant_id, command)
        )
    except DomainError as refused:
        if isinstance(refused, Forbidden):
            raise
        errors = field_errors(refused) or {"form": refused.message}
        values = {k: form.get(k, "") for k in ("integration_id", "source_value", "maci_role",
                                                "priority")}  # fmt: skip
        return await _page(request, who, tenant_id, values=values, errors=errors, status=422)
    return go(f"{PREFIX}/tenants/{tenant_id}/role-mappings?created={mapping.id}")


@post("/tenants/{tenant_id:uuid}/role-mappings/{mapping_id:uuid}/delete")
async def delete_role_mapping(
    request: Request[Any, Any, Any], tenant_id: UUID, mapping_id: UUID
) -> Response[Any]:
    who = await who_of(request)
    form = await read_form(request)
    commands = _commands(request)
    await in_thread(partial(commands.delete, context_of(who, form), tenant_id, mapping_id))
    return go(f"{PREFIX}/tenants/{tenant_id}/role-mappings?deleted={mapping_id}")


@get("/tenants/{tenant_id:uuid}/role-mappings/preview")
async def preview_roles(request: Request[Any, Any, Any], tenant_id: UUID) -> Response[str]:
    """Which roles a user with these groups (or attribute, claim, scope values) would get."""
    who = await who_of(request)
    authorize(who.principal, Permission.ROLE_MAPPING_READ, tenant_id)
    integrations, _ = await _lists(request, tenant_id)
    kinds = {str(i["integration_id"]): i for i in integrations}
    chosen = request.query_params.get("integration_id", "")[:64]
    text = request.query_params.get("values", "")[:20_000]
    values = [v.strip() for v in text.replace("\r\n", "\n").split("\n") if v.strip()]
    preview: dict[str, Any] = {"integration_id": chosen, "given": text}
    if chosen not in kinds:
        preview["error"] = "choose an integration of this tenant"
    elif len(values) > MAX_PREVIEW_VALUES:
        preview["error"] = f"give at most {MAX_PREVIEW_VALUES} values"
    else:
        integration = kinds[chosen]
        resolved = await api_of(request).sign_in.preview_roles(
            tenant_id, UUID(chosen), integration["integration_type"], values
        )
        preview["integration_name"] = integration["integration_name"]
        preview["refused"] = resolved is None
        preview["roles"] = [] if resolved is None else [r.value for r in resolved.roles]
        preview["matched"] = 0 if resolved is None else len(resolved.matched)
    return await _page(request, who, tenant_id, preview=preview)


ROUTES = [role_mappings_page, create_role_mapping, delete_role_mapping, preview_roles]
