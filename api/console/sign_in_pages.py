"""The console's sign-in pages: the operator token form, the LDAP form, the single sign-on
buttons of a tenant (its enabled SAML, OIDC and OAuth integrations; each starts the service's
own SAML or OIDC sign-in with the console as its return, see `api.console.landing`),
sign-out."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode
from uuid import UUID

from litestar import Request, Response, get, post

from api.console.permissions import may
from api.console.principal import client_of, session_of, signed_in, verified
from api.console.rendering import PREFIX, api_of, go, page, read_form, session_cookie
from api.console.session import ConsoleSession
from api.http.errors import status_of
from commands.authorization import Permission
from commands.context import Principal
from commands.sign_in import Attempt
from domain.errors import DomainError, NotFound
from projections.integrations import list_integrations
from projections.tenants import find_tenant_by_slug

SSO_TYPES = {"saml": "SAML", "oidc": "OpenID Connect", "oauth": "OAuth 2.0"}
MAX_SLUG = 64


@get("/")
async def home(request: Request[Any, Any, Any]) -> Response[Any]:
    who = await signed_in(api_of(request), request)
    if who is None:
        return go(f"{PREFIX}/sign-in")
    return go(start_page(who.principal))


def start_page(principal: Principal) -> str:
    """Where a principal lands: the tenant list for operators, the tenant page for those who may
    read it, else the tenant's policies (every role of a tenant reads them)."""
    if principal.is_platform:
        return f"{PREFIX}/tenants"
    if may(principal, Permission.TENANT_READ, principal.tenant_id):
        return f"{PREFIX}/tenants/{principal.tenant_id}"
    return f"{PREFIX}/tenants/{principal.tenant_id}/policies"


def _flow(integration_type: str) -> str:
    return "saml" if integration_type == "saml" else "oidc"


@get("/sign-in/{flow:str}/{integration_id:uuid}")
async def sso_start(flow: str, integration_id: UUID) -> Response[Any]:
    """A single sign-on button: on to the service's own SAML or OIDC sign-in, whose return is
    the console (the IdP's answer lands there signed in)."""
    if flow not in ("saml", "oidc"):
        raise NotFound("no such sign-in", {"flow": flow[:10]})
    query = urlencode({"return_to": PREFIX + "/"})
    return go(f"/v1/auth/{flow}/{integration_id}/login?{query}")


async def sso_buttons(request: Request[Any, Any, Any], slug: str) -> list[dict[str, str]] | None:
    """The single sign-on buttons of the active tenant `slug` (None: no such active tenant)."""
    api = api_of(request)
    async with api.database.platform_session() as conn:
        tenant = await find_tenant_by_slug(conn, slug)
    if tenant is None or tenant["status"] != "active":
        return None
    async with api.database.tenant_session(tenant["tenant_id"]) as conn:
        rows = await list_integrations(conn, integration_type=None, enabled=True)
    return [
        {
            "id": str(r["integration_id"]),
            "name": r["integration_name"],
            "kind": SSO_TYPES[r["integration_type"]],
            "flow": _flow(r["integration_type"]),
        }
        for r in rows
        if r["integration_type"] in SSO_TYPES
    ]


@get("/sign-in")
async def sign_in_page(request: Request[Any, Any, Any]) -> Response[str]:
    slug = request.query_params.get("tenant", "")[:MAX_SLUG].strip().lower()
    buttons = await sso_buttons(request, slug) if slug else None
    errors = {"sso": "no active tenant has this slug"} if slug and buttons is None else {}
    return page(
        request, "sign_in.html", values={"tenant_slug": slug, "tenant": slug}, errors=errors,
        sso=buttons,
    )  # fmt: skip


def _signed_in_redirect(
    request: Request[Any, Any, Any], session: ConsoleSession, target: str
) -> Response[Any]:
    return go(target, [session_cookie(request, session)])


@post("/sign-in/token")
async def sign_in_token(request: Request[Any, Any, Any]) -> Response[Any]:
    form = await read_form(request)
    token = form.get("token", "").strip()
    principal = await verified(api_of(request), token) if token else None
    if principal is None:
        errors = {"token": "this token is not valid (expired, revoked or not issued here)"}
        return page(request, "sign_in.html", values={}, errors=errors, status=401)
    session = (session_of(request) or ConsoleSession.fresh()).signed_in(token, None)
    return _signed_in_redirect(request, session, start_page(principal))


@post("/sign-in/ldap")
async def sign_in_ldap(request: Request[Any, Any, Any]) -> Response[Any]:
    form = await read_form(request)
    values = {k: form.get(k, "") for k in ("tenant_slug", "username")}
    missing = {k: "required" for k in ("tenant_slug", "username", "password") if not form.get(k)}
    if missing:
        return page(request, "sign_in.html", values=values, errors=missing, status=422)
    ip, agent = client_of(request)
    attempt = Attempt(
        tenant_slug=values["tenant_slug"][:256],
        username=values["username"][:256],
        password=form["password"][:1024],
        integration_id=None,
        ip=ip,
        user_agent=agent,
    )
    try:
        issued = await api_of(request).sign_in.login(attempt)
    except DomainError as refused:
        errors = {"ldap": refused.message}
        return page(
            request, "sign_in.html", values=values, errors=errors, status=status_of(refused.code)
        )
    session = (session_of(request) or ConsoleSession.fresh()).signed_in(
        issued.access_token, issued.refresh_token
    )
    return _signed_in_redirect(request, session, f"{PREFIX}/")  # home: the principal's start page


@post("/sign-out")
async def sign_out(request: Request[Any, Any, Any]) -> Response[Any]:
    who = await signed_in(api_of(request), request)
    if who is not None:
        ip, agent = client_of(request)
        p = who.principal
        await api_of(request).sign_in.logout(
            p.tenant_id, p.sid, p.sub, ip=ip, user_agent=agent, auth_method=p.auth_method
        )
    return go(f"{PREFIX}/sign-in", [session_cookie(request, None)])


ROUTES = [home, sign_in_page, sign_in_token, sign_in_ldap, sso_start, sign_out]
