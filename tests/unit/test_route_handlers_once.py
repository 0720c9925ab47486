"""Exception handlers resolved once per route handler are the ones Litestar resolves per
request: every layer's map merged, the innermost winning."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Litestar, Request, Response, Router, get
from litestar.testing import TestClient

from api.http.app import resolve_exception_handlers_once


class Inner(Exception):
    pass


class Outer(Exception):
    pass


def _answer(name: str) -> Any:
    def handler(request: Request[Any, Any, Any], exc: Exception) -> Response[str]:
        del request
        return Response(f"{name}:{type(exc).__name__}", status_code=418)

    return handler


class Things(Controller):
    path = "/things"
    exception_handlers = {Inner: _answer("controller")}  # noqa: RUF012

    @get("/inner", sync_to_thread=False)
    def inner(self) -> str:
        raise Inner

    @get("/outer", sync_to_thread=False, exception_handlers={Outer: _answer("handler")})
    def outer(self) -> str:
        raise Outer


def _app() -> Litestar:
    router = Router("/v1", route_handlers=[Things], exception_handlers={Outer: _answer("router")})
    return Litestar([router], exception_handlers={Inner: _answer("app"), Outer: _answer("app")})


def test_resolved_once_equals_resolved_per_request() -> None:
    app = _app()
    fresh = {
        handler: handler.resolve_exception_handlers()
        for route in app.routes
        for handler in route.route_handlers  # type: ignore[union-attr]
    }
    resolve_exception_handlers_once(app)
    for handler, handlers in fresh.items():
        assert handler.resolve_exception_handlers() == handlers
    ours = [h for h in fresh if h.handler_name in {"inner", "outer"}]
    assert len(ours) == 2
    for handler in ours:  # resolved once: the same map every time
        assert handler.resolve_exception_handlers() is handler.resolve_exception_handlers()
    with TestClient(app) as client:
        assert client.get("/v1/things/inner").text == "controller:Inner"
        assert client.get("/v1/things/outer").text == "handler:Outer"
