"""The edge: a raw ASGI wrapper around the whole Litestar app, so it sees every response,
including the framework's own 404 and 405, and everything refused before routing.

For every request it assigns a request id, adds the security headers and
`X-Constitutional-Hash`, records metrics and writes one access-log line. For `/v1` (except the
two sign-in routes that exchange credentials for tokens) it also authenticates the bearer token,
refuses revoked tokens (ended sessions) and tokens of tenants that are not active, and applies the
tenant's quotas: requests per minute (with `X-RateLimit-*` on every response to that principal),
concurrent requests, and storage on writes of tenant principals (a decision, `POST
/v1/tenants/{id}/decisions`, stores nothing the tenant's storage quota counts, so it is not a
write to that quota and stays available to a tenant whose storage is used up). A refusal is
rendered with the one error envelope (errors.py) and never reaches a handler, so nothing is
written. An authenticated request goes to `authenticated`: the decision route answered here
(api/http/decision_route.py), which passes every other request to the app.
"""

from __future__ import annotations

import logging
import re
import time
from typing import TYPE_CHECKING, Any

from litestar.enums import ScopeType
from litestar.exceptions import HTTPException
from litestar.utils import normalize_path
from opentelemetry.trace import SpanKind, use_span

from api.http.auth import PRINCIPAL_KEY, authenticate
from api.http.errors import (
    ConcurrencyLimited,
    DatabaseUnavailable,
    InvalidToken,
    RateLimited,
    StorageQuotaExceeded,
    envelope_bytes,
    refusal_headers,
    status_of,
)
from api.http.schema_ui import PAGE_PATH as UI_PAGE
from api.logging import request_id_var
from domain.entropy import random_bytes
from domain.errors import DomainError
from infra import tracing
from infra.postgres.outage import database_unreachable

if TYPE_CHECKING:
    from litestar._asgi.asgi_router import ASGIRouter
    from litestar.types import ASGIApp, HTTPScope, Message, Receive, Scope, Send

    from api.http.services import ApiServices
    from commands.context import Principal

access_log = logging.getLogger("acgs.http.access")

API_PREFIX = "/v1"
PUBLIC_PATHS = frozenset({"/v1/auth/ldap/login", "/v1/auth/token/refresh"})
# Routes called by a browser or an identity provider, with no bearer token: (methods, path).
PUBLIC_PATTERNS = (
    (frozenset({"POST"}), re.compile(r"^/v1/auth/saml/acs$")),
    (frozenset({"GET"}), re.compile(r"^/v1/auth/saml/[0-9a-fA-F-]{36}/(metadata|login|slo)$")),
    (frozenset({"GET"}), re.compile(r"^/v1/auth/oidc/(?:[0-9a-fA-F-]{36}/login|callback)$")),
)
_SLASHES = re.compile("/{2,}")
WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
SECURITY_HEADERS = (
    (b"x-content-type-options", b"nosniff"),
    (
        b"content-security-policy",
        b"default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'",
    ),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"cross-origin-resource-policy", b"same-origin"),
    (b"cache-control", b"no-store"),
)
# The Swagger UI page (schema_ui.py) runs the scripts and styles this service serves, and its
# components set inline styles; nothing else is loosened, and nothing may come from elsewhere.
UI_PAGE_CSP = (
    b"default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    b"img-src 'self' data:; font-src 'self' data:; connect-src 'self'; "
    b"frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
)
# The web console (api/console) serves its own scripts, styles and forms, and nothing inline.
CONSOLE_PREFIX = "/console"
CONSOLE_CSP = (
    b"default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
    b"connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
# Writes that store nothing counted in the tenant's storage quota (decisions: the decision log
# is the service's own record, not the tenant's data).
_NOT_STORED = re.compile(r"^/v1/tenants/[^/]+/decisions/?$")
_REQUEST_ID = re.compile(rb"^[A-Za-z0-9._-]{8,64}$")
# Requests on a critical path are traced whatever the ordinary sampling ratio (docs/tracing.md):
# authentication, the tenant lifecycle (writes to a tenant), policy conversion and its jobs.
_CRITICAL_ANY = re.compile(r"^/v1/auth/")
# (a write to a tenant itself, or anything under a policy or migration path; each pattern is
# tried only when its fixed text is in the path, which most paths are not)
_CRITICAL_TENANT = re.compile(r"^/v1/tenants(?:/[^/]+(?:/reactivate)?)?/?$")
_CRITICAL_POLICY = re.compile(r"/polic(?:y|ies)(?:/|$)")
_CRITICAL_MIGRATION = re.compile(r"/migrations(?:/|$)")


class Edge:
    def __init__(
        self,
        app: ASGIApp,
        api: ApiServices,
        router: ASGIRouter,
        authenticated: ASGIApp | None = None,
    ) -> None:
        self._app = app
        self._authenticated = authenticated or app
        self._api = api
        self._router = router
        hash_header = (b"x-constitutional-hash", api.constitutional_hash.encode())
        self._static_headers = [*SECURITY_HEADERS, hash_header]
        csp = b"content-security-policy"
        self._ui_page_headers = [
            *((k, UI_PAGE_CSP if k == csp else v) for k, v in SECURITY_HEADERS),
            hash_header,
        ]
        self._console_headers = [
            *((k, CONSOLE_CSP if k == csp else v) for k, v in SECURITY_HEADERS),
            hash_header,
        ]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP:
            await self._app(scope, receive, send)
            return
        started = time.perf_counter()
        request_id = _request_id(scope)
        context_token = request_id_var.set(request_id)
        scope.setdefault("state", {})["request_id"] = request_id
        ui_page = scope["path"].rstrip("/") == UI_PAGE
        static = self._ui_page_headers if ui_page else self._static_headers
        if scope["path"].startswith(CONSOLE_PREFIX):
            static = self._console_headers
        headers = [*static, (b"x-request-id", request_id.encode())]
        status = [500]

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
                message["headers"] = [*message.get("headers", ()), *headers]
            await send(message)

        principal: Principal | None = None
        holding = False
        with _server_span(scope) as span:
            try:
                try:
                    if _is_api_path(scope["path"]) and not _is_public(
                        scope["path"], scope["method"]
                    ):
                        principal = await self._principal(scope, span)
                        holding = await self._admit(scope, principal, headers)
                    serve = self._app if principal is None else self._authenticated
                    await serve(scope, receive, send_with_headers)
                except DomainError as refusal:
                    await self._refuse(send_with_headers, refusal)
                except Exception as exc:
                    # the checks above read the database (revocations, the tenant's limits)
                    if not database_unreachable(exc):
                        raise
                    await self._refuse(send_with_headers, DatabaseUnavailable())
            finally:
                if holding and principal is not None:
                    await self._api.concurrency.release(principal.tenant_id)
                route = self._record(scope, status[0], principal, time.perf_counter() - started)
                if span.is_recording():
                    span.update_name(f"{scope['method']} {route}")
                    span.set_attribute("http.route", route)
                    span.set_attribute("http.response.status_code", status[0])
                request_id_var.reset(context_token)

    async def _principal(self, scope: HTTPScope, span: Any) -> Principal:
        """The caller of an API path, from a valid access token that is not revoked."""
        principal = authenticate(self._api.verifier, _header(scope, b"authorization"))
        if await self._api.revocations.is_revoked(principal.sid, principal.jti):
            raise InvalidToken("the access token is not valid", {"reason": "token revoked"})
        if span.is_recording():
            _identify(span, principal, self._api.constitutional_hash)
        return principal

    async def _admit(
        self, scope: HTTPScope, principal: Principal, headers: list[tuple[bytes, bytes]]
    ) -> bool:
        """Apply the tenant's state and quotas; True when a concurrency slot is now held."""
        await admit(self._api, principal, scope["method"], scope["path"], headers)
        scope["state"][PRINCIPAL_KEY] = principal
        return True

    async def _refuse(self, send: Send, refusal: DomainError) -> None:
        body = envelope_bytes(
            refusal.code, refusal.message, refusal.details, self._api.constitutional_hash
        )
        extra = [(k.lower().encode(), v.encode()) for k, v in refusal_headers(refusal).items()]
        if refusal.code in {"UNAUTHENTICATED", "INVALID_TOKEN"}:
            extra.append((b"www-authenticate", b'Bearer realm="acgs"'))
        await send(
            {
                "type": "http.response.start",
                "status": status_of(refusal.code),
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                    *extra,
                ],
            }
        )
        await send({"type": "http.response.body", "body": body, "more_body": False})

    def _record(
        self, scope: HTTPScope, status: int, principal: Principal | None, seconds: float
    ) -> str:
        """Metrics and the access-log line of a finished request; returns its route template."""
        route = self._route_template(scope)
        tenant = str(principal.tenant_id) if principal is not None else "-"
        self._api.metrics.observe(route, scope["method"], status, tenant, seconds)
        if access_log.isEnabledFor(logging.INFO):
            access_log.info(
                "request",
                extra={
                    "request_id": scope["state"].get("request_id"),
                    "fields": {
                        "method": scope["method"],
                        "path": scope["path"],
                        "route": route,
                        "status": status,
                        "duration_ms": round(seconds * 1000, 3),
                        "tenant_id": tenant,
                        "sub": principal.sub if principal is not None else None,
                    },
                },
            )
        return route

    def _route_template(self, scope: HTTPScope) -> str:
        """The route's path template: set by routing, or (for a request refused here, before
        routing) looked up the same way; "unrouted" when no route matches."""
        template = scope.get("path_template")
        if template:
            return str(template)
        try:
            *_, template = self._router.handle_routing(
                path=normalize_path(scope["path"]), method=scope["method"]
            )
        except HTTPException:
            return "unrouted"
        return str(template)


async def admit(
    api: ApiServices,
    principal: Principal,
    method: str,
    path: str,
    headers: list[tuple[bytes, bytes]],
) -> None:
    """Apply the principal's tenant state and quotas to one request: refuse a tenant that is not
    active, count the request against its requests per minute (`X-RateLimit-*` appended to
    `headers`), take one of its concurrent-request slots, and refuse a write of a tenant
    principal whose storage is used up. When it returns, the caller holds the slot and must
    `api.concurrency.release(principal.tenant_id)` once the response is sent. The web console
    admits its signed-in requests with this too."""
    tenant_id = principal.tenant_id
    limits = await api.directory.limits(tenant_id)
    if limits is None or not limits.active:
        raise InvalidToken("the access token is not valid", {"reason": "tenant not active"})
    decision = await api.rate_limiter.hit(tenant_id, limits.max_requests_per_minute)
    headers += [
        (b"x-ratelimit-limit", str(decision.limit).encode()),
        (b"x-ratelimit-remaining", str(decision.remaining).encode()),
        (b"x-ratelimit-reset", str(decision.reset_at).encode()),
    ]
    if not decision.allowed:
        raise RateLimited(decision.retry_after, decision.limit)
    if not await api.concurrency.acquire(tenant_id, limits.max_concurrent_connections):
        raise ConcurrencyLimited(
            "the tenant's limit of concurrent requests is reached",
            {"limit": limits.max_concurrent_connections},
        )
    try:
        if (
            not principal.is_platform
            and stores_data(method, path)
            and await api.storage.exceeds(tenant_id, limits.max_storage_gb)
        ):
            raise StorageQuotaExceeded(
                "the tenant's storage quota is used up",
                {"max_storage_gb": limits.max_storage_gb},
            )
    except BaseException:
        await api.concurrency.release(tenant_id)
        raise


def _server_span(scope: HTTPScope) -> Any:
    """The request's server span (a context manager), continuing the caller's `traceparent`."""
    method, path = scope["method"], scope["path"]
    critical = bool(_CRITICAL_ANY.match(path)) or (method in WRITE_METHODS and _critical(path))
    supplied = _header(scope, b"traceparent")
    parent = tracing.parent_context(supplied.decode("latin-1") if supplied else None)
    # what `start_as_current_span` does, without its own context manager around `use_span`
    span = tracing.tracer().start_span(
        f"{method} {path}",
        context=parent,
        kind=SpanKind.SERVER,
        attributes={"http.request.method": method, "url.path": path, tracing.CRITICAL: critical},
        record_exception=False,
        set_status_on_exception=False,
    )
    return use_span(span, end_on_exit=True, record_exception=False, set_status_on_exception=False)


def _critical(path: str) -> bool:
    """Whether a write to `path` is on a critical path (see `_CRITICAL_TENANT`)."""
    if _CRITICAL_TENANT.match(path) or ("/polic" in path and _CRITICAL_POLICY.search(path)):
        return True
    return "/migrations" in path and bool(_CRITICAL_MIGRATION.search(path))


def _identify(span: Any, principal: Principal, constitutional_hash: str) -> None:
    span.set_attribute(tracing.TENANT, str(principal.tenant_id))
    span.set_attribute(tracing.USER, principal.sub)
    span.set_attribute(tracing.HASH, constitutional_hash)
    if principal.primary_role is not None:
        span.set_attribute(tracing.ROLE, principal.primary_role.value)


def stores_data(method: str, path: str) -> bool:
    """Whether a request may store what the tenant's storage quota counts: a write, except a
    decision (the decision log is the service's own record). `path` may be a route template."""
    return method.upper() in WRITE_METHODS and not _NOT_STORED.match(_single_slashes(path))


def _is_api_path(path: str) -> bool:
    """Whether the router may serve `path` from /v1 (it ignores repeated slashes)."""
    path = _single_slashes(path)
    return path == API_PREFIX or path.startswith(API_PREFIX + "/")


def _is_public(path: str, method: str) -> bool:
    """The sign-in routes that take no bearer token (they exchange credentials for one)."""
    path = _single_slashes(path).rstrip("/")
    return path in PUBLIC_PATHS or any(
        method in methods and pattern.match(path) for methods, pattern in PUBLIC_PATTERNS
    )


def _single_slashes(path: str) -> str:
    """The path as the router reads it: repeated slashes count as one."""
    return _SLASHES.sub("/", path) if "//" in path else path


def _header(scope: HTTPScope, name: bytes) -> bytes | None:
    for key, value in scope["headers"]:
        if key == name:
            return value
    return None


def _request_id(scope: HTTPScope) -> str:
    supplied = _header(scope, b"x-request-id")
    if supplied is not None and _REQUEST_ID.fullmatch(supplied):
        return supplied.decode()
    return random_bytes(16).hex()


__all__ = ["Edge", "admit", "stores_data"]
