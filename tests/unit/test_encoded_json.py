"""`EncodedJson` sends what Litestar's `Response(body, media_type=MediaType.JSON)` sends, on the
direct path and on Litestar's own (layer headers or cookies, background tasks, HEAD)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from litestar import Litestar, MediaType, Response, get, post
from litestar.background_tasks import BackgroundTask
from litestar.datastructures import Cookie
from litestar.testing import TestClient

from api.http.encoded_json import EncodedJson

BODY = b'{"decision_id":"0192","allow":true,"deny":[],"obligations":[{"type":"audit"}]}'


def _messages(response: Response[Any], **kwargs: Any) -> list[dict[str, Any]]:
    sent: list[dict[str, Any]] = []

    async def send(message: Any) -> None:
        sent.append(message)

    async def receive() -> Any:
        return {"type": "http.request", "body": b"", "more_body": False}

    asgi = response.to_asgi_response(None, None, **kwargs)  # type: ignore[arg-type]
    asyncio.run(asgi({"type": "http", "method": "POST"}, receive, send))  # type: ignore[arg-type]
    return sent


@pytest.mark.parametrize("status", [None, 200, 201])
@pytest.mark.parametrize("body", [BODY, b"", b"[1,2]" * 1000])
def test_the_messages_are_litestars(status: int | None, body: bytes) -> None:
    litestar = Response(body, media_type=MediaType.JSON, status_code=status)
    given = {"cookies": [], "headers": {}, "media_type": MediaType.JSON, "status_code": 200}
    assert _messages(EncodedJson(body, status), **given) == _messages(litestar, **given)


@pytest.mark.parametrize(
    "given",
    [
        {"headers": {"x-layer": "1"}},
        {"cookies": [Cookie(key="k", value="v")]},
        {"background": BackgroundTask(lambda: None)},
        {"is_head_response": True, "status_code": 200},
    ],
)
def test_what_it_does_not_handle_goes_litestars_way(given: dict[str, Any]) -> None:
    body = b"" if given.get("is_head_response") else BODY
    litestar = Response(body, media_type=MediaType.JSON)
    assert _messages(EncodedJson(body), **given) == _messages(litestar, **given)


def test_a_handler_answers_the_same_through_the_app() -> None:
    @post("/ours", status_code=200, sync_to_thread=False, response_headers={"x-layer": "1"})
    def ours_with_layer() -> Response[Any]:
        return EncodedJson(BODY)

    @post("/plain", status_code=200, sync_to_thread=False)
    def ours() -> Response[Any]:
        return EncodedJson(BODY)

    @post("/theirs", status_code=200, sync_to_thread=False)
    def theirs() -> Response[Any]:
        return Response(BODY, media_type=MediaType.JSON)

    @get("/head", sync_to_thread=False)
    def head() -> Response[Any]:
        return EncodedJson(BODY)

    app = Litestar([ours_with_layer, ours, theirs, head], openapi_config=None)
    with TestClient(app) as client:
        a, b, c = client.post("/plain"), client.post("/theirs"), client.post("/ours")
        assert (a.status_code, a.content, a.headers.raw) == (
            b.status_code,
            b.content,
            b.headers.raw,
        )
        assert c.headers["x-layer"] == "1"
        assert c.content == BODY
        assert client.head("/head").content == b""
