"""The decision route, `POST /v1/tenants/{tenant_id}/decisions`, served by the edge itself.

The edge hands every authenticated request here (`DecisionRoute`); a request of this route in
its ordinary form is answered without the framework: its routing, parameter and body handling
and response objects cost about as much as a decision (a cached policy's evaluation) itself.
The answer is made by the route handler's own code (`decision_answer`) after the same checks
in the same order, so it is the answer the framework route gives, byte for byte; a refusal is
rendered by the route's exception handlers, as the framework renders it.

Rule: only a request every check accepts is served here: POST, the path exactly
`/v1/tenants/<canonical UUID>/decisions` (no mounted root path), a valid Host header (or none),
a body within the size limit that is JSON of the decision body's type (as `check_body` and a
strict conversion accept it: no problem found, nothing to convert leniently), at most one
X-Constitutional-Hash header. Anything else goes to the framework unchanged, the body read so
far given to it again, so every refusal of a malformed request is the framework's own.
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any
from uuid import UUID

from litestar._asgi.utils import is_valid_host
from litestar.enums import ScopeType
from litestar.middleware._internal.exceptions.middleware import get_exception_handler
from litestar.utils.scope.state import ScopeState

from api.http.auth import PRINCIPAL_KEY
from api.http.bodies import converted, decode, is_json_media
from api.http.encoded_json import send_json
from api.http.policies import decision_answer
from api.http.policy_dto import DecisionRequestBody
from domain.errors import ValidationFailed

if TYPE_CHECKING:
    from litestar import Litestar
    from litestar.types import ASGIApp, Receive, Scope, Send

    from api.http.services import ApiServices

_PATH = re.compile(
    r"^/v1/tenants/([0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})"
    r"/decisions$"
)
_HASH_HEADER = b"x-constitutional-hash"


class DecisionRoute:
    """An ASGI app: the decision route's ordinary requests answered here, every other request
    passed to `fallback` (the framework app)."""

    def __init__(self, app: Litestar, api: ApiServices, fallback: ASGIApp) -> None:
        self._app = app
        self._api = api
        self._fallback = fallback
        limit = app.request_max_body_size
        self._max_body = limit if isinstance(limit, int) else None
        sample = f"/v1/tenants/{UUID(int=0)}/decisions"
        _, self._handler, _, _, self._template = app.asgi_router.handle_routing(sample, "POST")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP:
            await self._fallback(scope, receive, send)
            return
        matched = (
            _PATH.match(scope["path"])
            if scope["method"] == "POST" and not scope.get("root_path")
            else None
        )
        if matched is None or not _plain_headers(scope["headers"], self._max_body):
            await self._fallback(scope, receive, send)
            return
        messages, body = await _read_body(receive, self._max_body)
        data = _decision_body(body) if body is not None else None
        if data is None:
            await self._fallback(scope, _replay(messages, receive), send)
            return
        tenant_id = UUID(matched.group(1))
        scope["path_params"] = {"tenant_id": tenant_id}  # type: ignore[dict-item] # as routed
        scope["path_template"] = self._template
        scope["route_handler"] = self._handler
        try:
            answer = await decision_answer(
                self._api,
                scope["state"][PRINCIPAL_KEY],
                tenant_id,
                data,
                _hash_header(scope["headers"]),
            )
        except Exception as exc:  # noqa: BLE001 - rendered as the framework renders it
            await self._refuse(scope, receive, send, exc)
            return
        await send_json(send, answer, 200)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send, exc: Exception) -> None:
        """What the framework's exception middleware does with an exception of this route."""
        handlers = self._handler.resolve_exception_handlers()
        ScopeState.from_scope(scope).exception_handlers = handlers
        for hook in self._app.after_exception:
            await hook(exc, scope)
        handler = get_exception_handler(handlers, exc)
        if handler is None:  # the app handles every Exception (api/http/errors.py)
            raise exc
        request = self._app.request_class(scope=scope, receive=receive, send=send)
        response = handler(request, exc)
        encoders = self._handler.resolve_type_encoders()
        await response.to_asgi_response(app=None, request=request, type_encoders=encoders)(
            scope, receive, send
        )


def _plain_headers(headers: Iterable[tuple[bytes, bytes]], max_body: int | None) -> bool:
    """The headers ask for nothing this module leaves to the framework: a valid Host, one
    Content-Type at most (JSON or none), a Content-Length within the limit, at most one
    X-Constitutional-Hash."""
    types = hashes = 0
    for name, value in headers:
        if name == b"host":
            if not is_valid_host(value):
                return False
        elif name == b"content-type":
            types += 1
            if types > 1 or not is_json_media(value.decode("latin-1")):
                return False
        elif name == b"content-length":
            if max_body is not None and (not value.isdigit() or int(value) > max_body):
                return False
        elif name == _HASH_HEADER:
            hashes += 1
            if hashes > 1:
                return False
    return True


def _hash_header(headers: Iterable[tuple[bytes, bytes]]) -> str | None:
    for name, value in headers:
        if name == _HASH_HEADER:
            return value.decode("latin-1")
    return None


async def _read_body(receive: Receive, limit: int | None) -> tuple[list[Any], bytes | None]:
    """The messages received, and the whole body; None when the client went away or the body
    is over `limit` (the framework then answers, from the messages given to it again)."""
    messages: list[Any] = []
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        messages.append(message)
        if message["type"] != "http.request":
            return messages, None
        chunk = message.get("body", b"")
        size += len(chunk)
        if limit is not None and size > limit:
            return messages, None
        chunks.append(chunk)
        if not message.get("more_body", False):
            return messages, b"".join(chunks)


def _decision_body(body: bytes) -> DecisionRequestBody | None:
    """The body as `check_body` and the framework read it, when they accept it as it is."""
    if not body.strip():
        return None
    try:
        value = decode(body)
    except ValidationFailed:
        return None
    return converted(value, DecisionRequestBody)


def _replay(messages: list[Any], receive: Receive) -> Receive:
    pending = deque(messages)

    async def replayed() -> Any:
        if pending:
            return pending.popleft()
        return await receive()

    return replayed
