"""What every console page shares: rendering (Jinja2, autoescaped), the session cookie, forms
with their CSRF check, the signed-in principal, the command context, and the error page. The
console never opens the database itself: it goes through the services the API uses."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any
from uuid import UUID

from jinja2 import Environment, FileSystemLoader, select_autoescape
from litestar import MediaType, Request, Response
from litestar.datastructures import Cookie
from litestar.exceptions import HTTPException
from litestar.response import Redirect

from api.console.principal import SignedIn, known_signed_in, session_of, signed_in
from api.console.session import COOKIE, CSRF_FIELD, CSRF_HEADER, ConsoleSession
from api.http.errors import refusal_headers, status_of
from api.http.services import ApiServices
from api.logging import request_id_var
from commands.context import CommandContext
from domain.errors import DomainError, NotFound, ValidationFailed

log = logging.getLogger(__name__)
HERE = Path(__file__).parent
PREFIX = "/console"
UNSAFE = frozenset({"POST", "PUT", "PATCH", "DELETE"})
MAX_FORM_FIELD = 4096
ENV = Environment(
    loader=FileSystemLoader(HERE / "templates"),
    autoescape=select_autoescape(default=True, default_for_string=True),
    trim_blocks=True,
    lstrip_blocks=True,
)


class CsrfRefused(DomainError):
    code = "FORBIDDEN"


def api_of(request: Request[Any, Any, Any]) -> ApiServices:
    api: ApiServices = request.app.state["api"]
    return api


def _secure(request: Request[Any, Any, Any]) -> bool:
    forwarded = request.headers.get("x-forwarded-proto", "").split(",")[0].strip().lower()
    return request.url.scheme == "https" or forwarded == "https"


def session_cookie(request: Request[Any, Any, Any], session: ConsoleSession | None) -> Cookie:
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
        constitutional_hash=api_of(request).constitutional_hash,
        request_id=request_id_var.get(),
        **values,
    )
    cookies = []
    if fresh or write_cookie or (who is not None and who.refreshed):
        cookies.append(session_cookie(request, session))
    return Response(html, status_code=status, media_type=MediaType.HTML, cookies=cookies)


def go(path: str, cookies: list[Cookie] | None = None) -> Response[Any]:
    return Redirect(path, status_code=303, cookies=cookies or [])


async def read_form(request: Request[Any, Any, Any]) -> dict[str, str]:
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
        supplied = (await read_form(request)).get(CSRF_FIELD)
    if session is None or not session.accepts(supplied):
        raise CsrfRefused("the form's security token is missing or stale; reload the page")


async def who_of(request: Request[Any, Any, Any]) -> SignedIn:
    who = await signed_in(api_of(request), request)
    if who is None:
        raise SignInNeeded
    return who


class SignInNeeded(Exception):
    pass


class Pending(Exception):
    """Just written, not yet in the read model: a page that reloads itself shows it."""

    def __init__(self, what: str) -> None:
        super().__init__(what)
        self.what = what


def context_of(who: SignedIn, form: dict[str, str]) -> CommandContext:
    return CommandContext(who.principal, form.get("constitutional_hash") or None, None)


def field_errors(error: DomainError) -> dict[str, str]:
    return {p["field"]: p["message"] for p in error.details.get("fields", []) if "field" in p}


async def tenant_row(request: Request[Any, Any, Any], tenant_id: UUID) -> Any:
    directory = api_of(request).directory
    row = await directory.row(tenant_id)
    if row is None:
        if await directory.limits(tenant_id) is not None:  # this process just created it
            raise Pending("the tenant")
        raise NotFound("tenant not found", {"tenant_id": str(tenant_id)})
    return row


def console_error(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    """Every failure of a console route is a page (never a stack trace) with the navigation of
    whoever is signed in; a visitor who is not signed in (or whose session ended) goes to the
    sign-in page. A refusal for too many requests says when to try again (`Retry-After`)."""
    if isinstance(exc, SignInNeeded):
        if request.headers.get("hx-request"):
            return Response("", status_code=401, headers={"HX-Redirect": f"{PREFIX}/sign-in"})
        return go(f"{PREFIX}/sign-in", [session_cookie(request, None)])
    who = known_signed_in(request)
    if isinstance(exc, Pending):
        return page(request, "pending.html", who=who, what=exc.what)
    headers: dict[str, str] = {}
    retry_after = None
    if isinstance(exc, DomainError):
        status, title, message = status_of(exc.code), exc.code, exc.message
        headers = refusal_headers(exc)
        retry_after = headers.get("Retry-After")
    elif isinstance(exc, HTTPException):
        status, title, message = exc.status_code, "ERROR", str(exc.detail)
    else:
        log.error("console request failed", exc_info=exc)
        status, title, message = 500, "INTERNAL_ERROR", "something went wrong on our side"
    response = page(
        request,
        "error.html",
        who=who,
        status=status,
        title=title,
        message=message,
        retry_after=retry_after,
    )
    response.headers.update(headers)
    return response
