"""The web console's routes, under /console: server-rendered pages (Jinja2, autoescaped) that
call the same commands and read-model queries as the JSON API, with the signed-in principal's
permissions (`authorize` with the same permission table). The console never opens the database
itself: it goes through the services the API uses."""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import Any
from uuid import UUID

import msgspec
from jinja2 import Environment, FileSystemLoader, select_autoescape
from litestar import MediaType, Request, Response, Router, get, post
from litestar.datastructures import Cookie
from litestar.exceptions import HTTPException
from litestar.response import Redirect
from litestar.static_files import create_static_files_router

from api.console.principal import SignedIn, client_of, session_of, signed_in, verified
from api.console.session import COOKIE, CSRF_FIELD, CSRF_HEADER, ConsoleSession
from api.http.command_calls import in_thread
from api.http.dto import CreateTenantRequest, UpdateTenantRequest
from api.http.errors import status_of
from api.http.quotas.storage import BYTES_PER_GB
from api.http.services import ApiServices
from api.logging import request_id_var
from commands.authorization import Permission, authorize
from commands.context import CommandContext
from commands.integrations import CreateIntegration, IntegrationCommands
from commands.sign_in import Attempt
from commands.tenants import CreateTenant
from domain.errors import DomainError, Forbidden, NotFound, ValidationFailed
from projections.integrations import find_integration, list_integrations
from projections.tenants import list_tenants

HERE = Path(__file__).parent
PREFIX = "/console"
UNSAFE = frozenset({"POST", "PUT", "PATCH", "DELETE"})
LDAP_TEXT_FIELDS = ("server_url", "base_dn", "bind_dn", "user_search_filter", "group_search_filter")
MAX_FORM_FIELD = 4096
ENV = Environment(
    loader=FileSystemLoader(HERE / "templates"),
    autoescape=select_autoescape(default=True, default_for_string=True),
    trim_blocks=True,
    lstrip_blocks=True,
)


class CsrfRefused(DomainError):
    code = "FORBIDDEN"


def _api(request: Request[Any, Any, Any]) -> ApiServices:
    api: ApiServices = request.app.state["api"]
    return api


def _secure(request: Request[Any, Any, Any]) -> bool:
    forwarded = request.headers.get("x-forwarded-proto", "").split(",")[0].strip().lower()
    return request.url.scheme == "https" or forwarded == "https"


def _cookie(request: Request[Any, Any, Any], session: ConsoleSession | None) -> Cookie:
    return Cookie(
        key=COOKIE,
        value=session.encode() if session else "",
        path=PREFIX,
        httponly=True,
        samesite="lax",
        secure=_secure(request),
        max_age=None if session else 0,
    )


def page(
    request: Request[Any, Any, Any],
    template: str,
    *,
    who: SignedIn | None = None,
    session: ConsoleSession | None = None,
    status: int = 200,
    write_cookie: bool = False,
    **values: Any,
) -> Response[str]:
    """A rendered page; the CSRF token comes from the session (a new one is started when the
    visitor has none, so the sign-in forms carry a token too)."""
    session = session or (who.session if who else None) or session_of(request)
    fresh = session is None
    if session is None:
        session = ConsoleSession.fresh()
    html = ENV.get_template(template).render(
        csrf_field=CSRF_FIELD,
        csrf_token=session.csrf_token,
        principal=who.principal if who else None,
        constitutional_hash=_api(request).constitutional_hash,
        request_id=request_id_var.get(),
        **values,
    )
    cookies = []
    if fresh or write_cookie or (who is not None and who.refreshed):
        cookies.append(_cookie(request, session))
    return Response(html, status_code=status, media_type=MediaType.HTML, cookies=cookies)


def _go(path: str, cookies: list[Cookie] | None = None) -> Response[Any]:
    return Redirect(path, status_code=303, cookies=cookies or [])


async def _form(request: Request[Any, Any, Any]) -> dict[str, str]:
    form = await request.form()
    values: dict[str, str] = {}
    for key, value in form.items():
        if isinstance(value, str):
            values[key] = value[:MAX_FORM_FIELD]
    bad = sorted(k for k, v in values.items() if "\x00" in v)
    if bad:
        raise ValidationFailed.listing(
            [{"field": k, "message": "must not contain a NUL character"} for k in bad]
        )
    return values


async def check_csrf(request: Request[Any, Any, Any]) -> None:
    """Every unsafe request carries the session's CSRF token (form field or header)."""
    if request.method not in UNSAFE:
        return
    session = session_of(request)
    supplied = request.headers.get(CSRF_HEADER)
    if supplied is None:
        supplied = (await _form(request)).get(CSRF_FIELD)
    if session is None or not session.accepts(supplied):
        raise CsrfRefused("the form's security token is missing or stale; reload the page")


async def _who(request: Request[Any, Any, Any]) -> SignedIn:
    who = await signed_in(_api(request), request)
    if who is None:
        raise _SignInNeeded
    return who


class _SignInNeeded(Exception):
    pass


class _Pending(Exception):
    """Just written, not yet in the read model: a page that reloads itself shows it."""

    def __init__(self, what: str) -> None:
        super().__init__(what)
        self.what = what


def _context(who: SignedIn, form: dict[str, str]) -> CommandContext:
    return CommandContext(who.principal, form.get("constitutional_hash") or None, None)


def _fields(error: DomainError) -> dict[str, str]:
    return {p["field"]: p["message"] for p in error.details.get("fields", []) if "field" in p}


# --- sign-in -------------------------------------------------------------------------------


@get("/")
async def home(request: Request[Any, Any, Any]) -> Response[Any]:
    who = await signed_in(_api(request), request)
    if who is None:
        return _go(f"{PREFIX}/sign-in")
    if who.principal.is_platform:
        return _go(f"{PREFIX}/tenants")
    return _go(f"{PREFIX}/tenants/{who.principal.tenant_id}")


@get("/sign-in")
async def sign_in_page(request: Request[Any, Any, Any]) -> Response[str]:
    return page(request, "sign_in.html", values={}, errors={})


def _signed_in_redirect(
    request: Request[Any, Any, Any], session: ConsoleSession, target: str
) -> Response[Any]:
    return _go(target, [_cookie(request, session)])


@post("/sign-in/token")
async def sign_in_token(request: Request[Any, Any, Any]) -> Response[Any]:
    form = await _form(request)
    token = form.get("token", "").strip()
    principal = await verified(_api(request), token) if token else None
    if principal is None:
        errors = {"token": "this token is not valid (expired, revoked or not issued here)"}
        return page(request, "sign_in.html", values={}, errors=errors, status=401)
    session = (session_of(request) or ConsoleSession.fresh()).signed_in(token, None)
    target = "/tenants" if principal.is_platform else f"/tenants/{principal.tenant_id}"
    return _signed_in_redirect(request, session, PREFIX + target)


@post("/sign-in/ldap")
async def sign_in_ldap(request: Request[Any, Any, Any]) -> Response[Any]:
    form = await _form(request)
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
        issued = await _api(request).sign_in.login(attempt)
    except DomainError as refused:
        errors = {"ldap": refused.message}
        return page(
            request, "sign_in.html", values=values, errors=errors, status=status_of(refused.code)
        )
    session = (session_of(request) or ConsoleSession.fresh()).signed_in(
        issued.access_token, issued.refresh_token
    )
    return _signed_in_redirect(request, session, f"{PREFIX}/tenants/{issued.session.tenant_id}")


@post("/sign-out")
async def sign_out(request: Request[Any, Any, Any]) -> Response[Any]:
    who = await signed_in(_api(request), request)
    if who is not None:
        ip, agent = client_of(request)
        p = who.principal
        await _api(request).sign_in.logout(
            p.tenant_id, p.sid, p.sub, ip=ip, user_agent=agent, auth_method=p.auth_method
        )
    return _go(f"{PREFIX}/sign-in", [_cookie(request, None)])


# --- tenants -------------------------------------------------------------------------------


@get("/tenants")
async def tenants_page(request: Request[Any, Any, Any]) -> Response[str]:
    who = await _who(request)
    authorize(who.principal, Permission.TENANT_LIST)
    search = request.query_params.get("q", "")[:256].strip()
    api = _api(request)
    async with api.database.platform_session() as conn:
        rows, total = await list_tenants(
            conn, status=None, limit=200, offset=0, search=search or None
        )
    template = "tenant_rows.html" if request.headers.get("hx-request") else "tenants.html"
    return page(request, template, who=who, tenants=rows, total=total, search=search)


@get("/tenants/new")
async def new_tenant_page(request: Request[Any, Any, Any]) -> Response[str]:
    who = await _who(request)
    authorize(who.principal, Permission.TENANT_CREATE)
    return page(request, "tenant_new.html", who=who, values={}, errors={})


@post("/tenants")
async def create_tenant(request: Request[Any, Any, Any]) -> Response[Any]:
    who = await _who(request)
    form = await _form(request)
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
    api = _api(request)
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
        tenant = await in_thread(partial(api.tenants.create, _context(who, form), command))
    except msgspec.ValidationError as invalid:
        errors["form"] = str(invalid)
    except DomainError as refused:
        errors.update(_fields(refused) or {"form": refused.message})
    if errors:
        return page(request, "tenant_new.html", who=who, values=values, errors=errors, status=422)
    api.directory.remember(tenant)
    return _go(f"{PREFIX}/tenants/{tenant.id}")


async def _usage(api: ApiServices, tenant_id: UUID) -> dict[str, Any]:
    used = await api.storage.bytes_used(tenant_id)
    return {
        "requests_per_minute": await api.rate_limiter.current(tenant_id),
        "storage_gb": round(used / BYTES_PER_GB, 6),
        "connections": await api.concurrency.current(tenant_id),
    }


async def _tenant(request: Request[Any, Any, Any], who: SignedIn, tenant_id: UUID) -> Any:
    authorize(who.principal, Permission.TENANT_READ, tenant_id)
    return await _tenant_row(request, tenant_id)


@get("/tenants/{tenant_id:uuid}")
async def tenant_page(request: Request[Any, Any, Any], tenant_id: UUID) -> Response[str]:
    who = await _who(request)
    row = await _tenant(request, who, tenant_id)
    usage = await _usage(_api(request), tenant_id)
    return page(request, "tenant.html", who=who, tenant=row, usage=usage, message=None)


@get("/tenants/{tenant_id:uuid}/usage")
async def tenant_usage(request: Request[Any, Any, Any], tenant_id: UUID) -> Response[str]:
    who = await _who(request)
    row = await _tenant(request, who, tenant_id)
    usage = await _usage(_api(request), tenant_id)
    return page(request, "usage.html", who=who, tenant=row, usage=usage)


@post("/tenants/{tenant_id:uuid}/status")
async def tenant_status(request: Request[Any, Any, Any], tenant_id: UUID) -> Response[Any]:
    who = await _who(request)
    form = await _form(request)
    api = _api(request)
    ctx = _context(who, form)
    action = form.get("action")
    if action == "suspend":
        changes = msgspec.convert({"status": "suspended"}, UpdateTenantRequest).changes()
        result = await in_thread(partial(api.tenants.update, ctx, tenant_id, changes))
        api.directory.remember(result.tenant)
    elif action == "reactivate":
        api.directory.remember(await in_thread(partial(api.tenants.reactivate, ctx, tenant_id)))
    else:
        raise ValidationFailed.field("action", "must be suspend or reactivate")
    return _go(f"{PREFIX}/tenants/{tenant_id}")


# --- integrations --------------------------------------------------------------------------


def _commands(request: Request[Any, Any, Any]) -> IntegrationCommands:
    commands = _api(request).system.integrations
    assert commands is not None
    return commands


@get("/tenants/{tenant_id:uuid}/integrations")
async def integrations_page(request: Request[Any, Any, Any], tenant_id: UUID) -> Response[str]:
    who = await _who(request)
    authorize(who.principal, Permission.INTEGRATION_READ, tenant_id)
    row = await _tenant_row(request, tenant_id)
    async with _api(request).database.tenant_session(tenant_id) as conn:
        rows = await list_integrations(conn, integration_type=None, enabled=None)
    breakers = _api(request).system.breakers
    for r in rows:
        r["circuit_breaker"] = breakers.state(r["integration_id"]).value if breakers else "closed"
    return page(request, "integrations.html", who=who, tenant=row, integrations=rows)


async def _tenant_row(request: Request[Any, Any, Any], tenant_id: UUID) -> Any:
    directory = _api(request).directory
    row = await directory.row(tenant_id)
    if row is None:
        if await directory.limits(tenant_id) is not None:  # this process just created it
            raise _Pending("the tenant")
        raise NotFound("tenant not found", {"tenant_id": str(tenant_id)})
    return row


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
    who = await _who(request)
    authorize(who.principal, Permission.INTEGRATION_MANAGE, tenant_id)
    row = await _tenant_row(request, tenant_id)
    values = {"tls_verify": "on", "user_search_filter": "(uid={username})"}
    return page(
        request, "integration_form.html", who=who, tenant=row, integration=None,
        values=values, errors={},
    )  # fmt: skip


@post("/tenants/{tenant_id:uuid}/integrations")
async def create_integration(request: Request[Any, Any, Any], tenant_id: UUID) -> Response[Any]:
    who = await _who(request)
    form = await _form(request)
    row = await _tenant_row(request, tenant_id)
    command = CreateIntegration(
        integration_type="ldap",
        integration_name=form.get("integration_name", ""),
        config=_ldap_config(form, editing=False),
        enabled=form.get("enabled", "on") == "on",
    )
    try:
        integration = await in_thread(
            partial(_commands(request).create, _context(who, form), tenant_id, command)
        )
    except DomainError as refused:
        if isinstance(refused, Forbidden):
            raise
        values = {k: v for k, v in form.items() if k != "bind_password"}
        errors = _fields(refused) or {"form": refused.message}
        return page(
            request, "integration_form.html", who=who, tenant=row, integration=None,
            values=values, errors=errors, status=422,
        )  # fmt: skip
    return _go(f"{PREFIX}/tenants/{tenant_id}/integrations/{integration.id}?created=1")


@get("/tenants/{tenant_id:uuid}/integrations/{integration_id:uuid}")
async def integration_page(
    request: Request[Any, Any, Any], tenant_id: UUID, integration_id: UUID
) -> Response[str]:
    who = await _who(request)
    authorize(who.principal, Permission.INTEGRATION_READ, tenant_id)
    row = await _tenant_row(request, tenant_id)
    async with _api(request).database.tenant_session(tenant_id) as conn:
        integration = await find_integration(conn, integration_id)
    if integration is None:
        if request.query_params.get("created"):
            raise _Pending("the integration")
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
    who = await _who(request)
    form = await _form(request)
    changes = {
        "integration_name": form.get("integration_name", ""),
        "config": _ldap_config(form, editing=True),
    }
    try:
        await in_thread(
            partial(
                _commands(request).update, _context(who, form), tenant_id, integration_id, changes
            )
        )
    except DomainError as refused:
        if isinstance(refused, Forbidden | NotFound):
            raise
        row = await _tenant_row(request, tenant_id)
        values = {k: v for k, v in form.items() if k != "bind_password"}
        errors = _fields(refused) or {"form": refused.message}
        return page(
            request, "integration_form.html", who=who, tenant=row,
            integration={"integration_id": integration_id, **values}, values=values,
            errors=errors, status=422,
        )  # fmt: skip
    return _go(f"{PREFIX}/tenants/{tenant_id}/integrations/{integration_id}")


@post("/tenants/{tenant_id:uuid}/integrations/{integration_id:uuid}/test")
async def test_integration(
    request: Request[Any, Any, Any], tenant_id: UUID, integration_id: UUID
) -> Response[Any]:
    who = await _who(request)
    form = await _form(request)
    try:
        outcome = await in_thread(
            partial(_commands(request).test, _context(who, form), tenant_id, integration_id)
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
        return _go(f"{PREFIX}/tenants/{tenant_id}/integrations/{integration_id}")
    return page(request, "test_result.html", who=who, test=test)


# --- errors --------------------------------------------------------------------------------


def console_error(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    """Every failure of a console route is a page (never a stack trace); a visitor who is not
    signed in (or whose session ended) goes to the sign-in page."""
    if isinstance(exc, _SignInNeeded):
        if request.headers.get("hx-request"):
            return Response("", status_code=401, headers={"HX-Redirect": f"{PREFIX}/sign-in"})
        return _go(f"{PREFIX}/sign-in", [_cookie(request, None)])
    if isinstance(exc, _Pending):
        return page(request, "pending.html", what=exc.what)
    if isinstance(exc, DomainError):
        status, title, message = status_of(exc.code), exc.code, exc.message
    elif isinstance(exc, HTTPException):
        status, title, message = exc.status_code, "ERROR", str(exc.detail)
    else:
        status, title, message = 500, "INTERNAL_ERROR", "something went wrong on our side"
    return page(request, "error.html", status=status, title=title, message=message)


def console_router() -> Router:
    static = create_static_files_router(
        path="/static", directories=[HERE / "static"], include_in_schema=False
    )
    return Router(
        path=PREFIX,
        route_handlers=[
            home,
            sign_in_page,
            sign_in_token,
            sign_in_ldap,
            sign_out,
            tenants_page,
            new_tenant_page,
            create_tenant,
            tenant_page,
            tenant_usage,
            tenant_status,
            integrations_page,
            new_integration_page,
            create_integration,
            integration_page,
            update_integration,
            test_integration,
            static,
        ],
        before_request=check_csrf,
        exception_handlers={Exception: console_error},
        include_in_schema=False,
    )
