"""A JSON response whose body the handler has already encoded, sent exactly as Litestar's own
`Response(body, media_type=MediaType.JSON)` sends it: the status, `content-type:
application/json`, `content-length`, then the body in one message.

Litestar's way there (the response object, a headers mapping, the ASGI response object) costs
more than encoding the body of a small answer; this one builds the two ASGI messages directly.
Whatever it does not handle goes Litestar's way: response headers or cookies set on a layer, a
background task, a HEAD request (and the deprecated `app` argument).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from litestar import MediaType, Response
from litestar.response.base import ASGIResponse

if TYPE_CHECKING:
    from litestar import Litestar, Request
    from litestar.background_tasks import BackgroundTask, BackgroundTasks
    from litestar.datastructures import Cookie
    from litestar.types import Receive, Scope, Send, TypeEncodersMap

_CONTENT_TYPE = (b"content-type", MediaType.JSON.value.encode())


class EncodedJson(Response[bytes]):
    """`Response(content, media_type=MediaType.JSON, status_code=status_code)`, sent directly."""

    __slots__ = ()

    def __init__(self, content: bytes, status_code: int | None = None) -> None:
        # what Response.__init__ sets for these arguments
        self.content = content
        self.background = None
        self.cookies = []
        self.encoding = "utf-8"
        self.headers = {}
        self.media_type = MediaType.JSON
        self.status_code = status_code
        self.response_type_encoders = {}

    def to_asgi_response(
        self,
        app: Litestar | None,
        request: Request[Any, Any, Any],
        *,
        background: BackgroundTask | BackgroundTasks | None = None,
        cookies: Iterable[Cookie] | None = None,
        encoded_headers: Iterable[tuple[bytes, bytes]] | None = None,
        headers: dict[str, str] | None = None,
        is_head_response: bool = False,
        media_type: MediaType | str | None = None,
        status_code: int | None = None,
        type_encoders: TypeEncodersMap | None = None,
    ) -> ASGIResponse:
        if (
            app is not None
            or background is not None
            or cookies
            or encoded_headers is not None
            or headers
            or is_head_response
        ):
            return super().to_asgi_response(
                app,
                request,
                background=background,
                cookies=cookies,
                encoded_headers=encoded_headers,
                headers=headers,
                is_head_response=is_head_response,
                media_type=media_type,
                status_code=status_code,
                type_encoders=type_encoders,
            )
        return _Sent(self.content, self.status_code or status_code or 200)


class _Sent(ASGIResponse):
    __slots__ = ()

    def __init__(self, body: bytes, status_code: int) -> None:
        self.body = body
        self.status_code = status_code
        self.background = None
        self.is_head_response = False

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        del scope, receive  # an ASGI app's arguments; the body is known
        await send_json(send, self.body, self.status_code)


async def send_json(send: Send, body: bytes, status_code: int) -> None:
    """Send `body`, JSON, as `EncodedJson(body, status_code)` would be sent."""
    await send(
        {
            "type": "http.response.start",
            "status": status_code,
            "headers": [_CONTENT_TYPE, (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body, "more_body": False})
