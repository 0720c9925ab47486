"""Console requests count against the signed-in principal's tenant quotas exactly as `/v1`
requests do: the same `admit` of the edge (tenant active, requests per minute with
`X-RateLimit-*`, a concurrent-request slot, storage on writes of tenant principals). A refusal
is the console's error page (429 with `Retry-After` when the minute's budget is spent), rendered
before any handler runs. Static files, the sign-in pages and sign-out are not counted (neither
are the API's sign-in routes): a visitor whose budget is spent can still sign out."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from litestar import Request
from litestar.enums import ScopeType

from api.console.principal import signed_in
from api.console.rendering import api_of, console_error
from api.http.edge import admit
from domain.errors import DomainError

if TYPE_CHECKING:
    from litestar.types import ASGIApp, Message, Receive, Scope, Send

NOT_COUNTED = re.compile(r"^/console/(?:static/|sign-in(?:/|$)|sign-out/?$)")


class ConsoleAdmission:
    """ASGI middleware of the console's router."""

    def __init__(self, app: ASGIApp) -> None:
        self._app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP or NOT_COUNTED.match(scope["path"]):
            await self._app(scope, receive, send)
            return
        request: Request[Any, Any, Any] = Request(scope, receive)
        api = api_of(request)
        who = await signed_in(api, request)
        if who is None:
            await self._app(scope, receive, send)
            return
        headers: list[tuple[bytes, bytes]] = []

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", ()), *headers]
            await send(message)

        try:
            await admit(api, who.principal, scope["method"], scope["path"], headers)
        except DomainError as refusal:
            response = console_error(request, refusal).to_asgi_response(app=None, request=request)
            await response(scope, receive, send_with_headers)
            return
        try:
            await self._app(scope, receive, send_with_headers)
        finally:
            await api.concurrency.release(who.principal.tenant_id)
