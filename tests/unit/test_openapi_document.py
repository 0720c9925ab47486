"""The OpenAPI document is completed from the route table: a route added later gets the error
envelope, the refusals the edge and the framework can give, `additionalProperties: false` on
its body, and links from what it creates, without code of its own. The app completes it once,
when it is first asked for."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Annotated, Any
from uuid import UUID

import msgspec
from litestar import Litestar, Router, get, post
from litestar.openapi import OpenAPIConfig

from api.http.errors import ErrorEnvelope
from api.http.openapi import NO_NUL, complete, finish_once


class Part(msgspec.Struct):
    label: str
    code: Annotated[str, msgspec.Meta(pattern="^[A-Z]+$")]


class NewWidget(msgspec.Struct, forbid_unknown_fields=True):
    name: str
    parts: list[Part] = []


class Widget(msgspec.Struct):
    widget_id: UUID
    name: str


@post("/widgets", status_code=201, sync_to_thread=False)
def create_widget(data: NewWidget) -> Widget:
    return Widget(widget_id=UUID(int=1), name=data.name)


@get("/widgets/{widget_id:uuid}", sync_to_thread=False)
def read_widget(widget_id: UUID) -> Widget:
    return Widget(widget_id=widget_id, name="w")


@post("/widgets/{widget_id:uuid}/ping", status_code=200, sync_to_thread=False)
def ping(widget_id: UUID, data: NewWidget | None = None) -> dict[str, str]:
    return {"pong": str(widget_id)}


@post("/tenants/{tenant_id:uuid}/decisions", status_code=200, sync_to_thread=False)
def decide(tenant_id: UUID, data: NewWidget) -> dict[str, str]:
    return {"decided": str(tenant_id)}


def _document() -> dict:  # type: ignore[type-arg]
    handlers = [create_widget, read_widget, ping, decide]
    v1 = Router("/v1", route_handlers=handlers, security=[{"T": []}])
    app = Litestar([v1], openapi_config=OpenAPIConfig(title="t", version="1"))
    complete(app)
    return msgspec.to_builtins(app.openapi_schema.to_schema())  # type: ignore[no-any-return]


def test_a_new_route_gets_the_refusals_it_can_be_given_in_the_envelope() -> None:
    doc = _document()
    create = doc["paths"]["/v1/widgets"]["post"]["responses"]
    assert {"401", "403", "413", "415", "422", "429", "500"} <= set(create)
    read = doc["paths"]["/v1/widgets/{widget_id}"]["get"]["responses"]
    assert {"401", "404", "422", "429", "500"} <= set(read)
    assert "403" not in read  # storage quota refusals are for writes
    forbidden = create["403"]["content"]["application/json"]["examples"]
    assert set(forbidden) == {"STORAGE_QUOTA_EXCEEDED"}
    # ... that store something the quota counts: a decision does not
    decide = doc["paths"]["/v1/tenants/{tenant_id}/decisions"]["post"]["responses"]
    assert {"401", "404", "413", "415", "422", "429", "500"} <= set(decide)
    assert "403" not in decide
    for responses in (create, read):
        for status, response in responses.items():
            if status[0] in "45":
                schema = response["content"]["application/json"]["schema"]
                assert schema == {"$ref": f"#/components/schemas/{ErrorEnvelope.__name__}"}


def test_bodies_refuse_unknown_fields_and_optional_bodies_are_not_required() -> None:
    doc = _document()
    assert doc["components"]["schemas"]["NewWidget"]["additionalProperties"] is False
    assert doc["paths"]["/v1/widgets"]["post"]["requestBody"]["required"] is True
    ping_body = doc["paths"]["/v1/widgets/{widget_id}/ping"]["post"]["requestBody"]
    assert ping_body["required"] is False


def test_strings_of_request_bodies_refuse_the_nul_character_at_any_depth() -> None:
    schemas = _document()["components"]["schemas"]
    assert schemas["NewWidget"]["properties"]["name"]["pattern"] == NO_NUL
    assert schemas["Part"]["properties"]["label"]["pattern"] == NO_NUL
    assert schemas["Part"]["properties"]["code"]["pattern"] == "^[A-Z]+$"  # a stricter one stays
    assert "pattern" not in schemas["Widget"]["properties"]["name"]  # a response is not a body


def test_what_a_route_creates_links_to_the_routes_that_take_its_id() -> None:
    links = _document()["paths"]["/v1/widgets"]["post"]["responses"]["201"]["links"]
    assert {link["parameters"]["path.widget_id"] for link in links.values()} == {
        "$response.body#/widget_id"
    }
    assert len(links) == 2  # read and ping


def test_the_document_is_finished_once_however_many_threads_ask_at_once() -> None:
    app = Litestar(
        [Router("/v1", route_handlers=[create_widget])],
        openapi_config=OpenAPIConfig(title="t", version="1"),
    )
    finished: list[object] = []
    started = threading.Barrier(8)

    def finish(app: Litestar) -> Any:
        finished.append(app.openapi_schema)
        time.sleep(0.05)  # the others ask meanwhile
        return app.openapi_schema

    def ask() -> object:
        started.wait()
        return finish_once(app, finish)

    with ThreadPoolExecutor(8) as pool:
        documents = list(pool.map(lambda _: ask(), range(8)))
    assert finished == [app.openapi_schema]
    assert all(document is app.openapi_schema for document in documents)
    assert finish_once(app, finish) is app.openapi_schema
    assert len(finished) == 1
