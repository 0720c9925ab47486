"""The OpenAPI document completed from the route table, so every route (a later one too) states
what it can really answer and a client, or a fuzzer, can follow it.

Run once on the app's generated document (`complete`), when it is first asked for
(`finish_once`): building it costs about half a second of CPU, which start-up does not pay, so a
process never asked for the document never pays it.

- every error response is the one envelope (`ErrorEnvelope`); the framework's own error shape,
  which the service never sends, is removed (a route may still declare a body of its own for a
  status, as `/readyz` does for 503);
- request bodies refuse unknown fields (`additionalProperties: false`), and their strings the
  NUL character (a `pattern`, unless the field has a stricter one), as `bodies.py` does;
- every operation lists the refusals the edge and the framework can give it besides its own:
  422 `VALIDATION_ERROR` when it takes parameters or a body, 404 when its path has parameters,
  413 and 415 for a body, 401 and 429 when it needs a token, 403 `STORAGE_QUOTA_EXCEEDED` for
  writes behind a token that the edge counts against the storage quota (`stores_data`: not a
  decision), and 500 `INTERNAL_ERROR` everywhere;
- a body the handler takes as optional is documented as not required;
- links: an operation answering 201 with a field `x_id` links to every operation whose path
  takes `{x_id}` (create a tenant, then read, update, deactivate or reactivate it).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any
from weakref import WeakValueDictionary

from litestar import Litestar
from litestar.openapi.spec import (
    Components,
    Example,
    Link,
    OpenAPI,
    OpenAPIMediaType,
    OpenAPIResponse,
    Operation,
    Reference,
    RequestBody,
    Schema,
)
from litestar.routes import HTTPRoute

from api.http.edge import stores_data
from api.http.errors import status_of
from api.http.examples import error_example

ENVELOPE = "ErrorEnvelope"
_METHODS = ("get", "put", "post", "patch", "delete")
_finishing = threading.Lock()
_finished: WeakValueDictionary[int, OpenAPI] = WeakValueDictionary()  # by id: unhashable


def finish_once(app: Litestar, finish: Callable[[Litestar], OpenAPI]) -> OpenAPI:
    """The app's document, `finish(app)` having run on it exactly once (whichever thread asks
    first runs it; the others wait for it)."""
    with _finishing:  # the framework builds the document on first use, unguarded
        document = app.openapi_schema
        if id(document) not in _finished:
            finish(app)
            _finished[id(document)] = document
    return document


def complete(app: Litestar) -> OpenAPI:
    document = app.openapi_schema
    operations = [
        (path, method, operation)
        for path, item in (document.paths or {}).items()
        for method in _METHODS
        if (operation := getattr(item, method, None)) is not None
    ]
    for path, method, operation in operations:
        _complete_refusals(path, method, operation)
        _refuse_unknown_fields(document.components, operation)
        _refuse_nul(document.components, operation)
    _add_links(document.components, operations)
    _mark_optional_bodies(app, document)
    return document


def _mark_optional_bodies(app: Litestar, document: OpenAPI) -> None:
    """A body the handler takes as optional (`X | None`) is not required (Litestar says it is)."""
    for route in app.routes:
        if not isinstance(route, HTTPRoute) or route.path_format not in (document.paths or {}):
            continue
        item = (document.paths or {})[route.path_format]
        for method, (handler, _) in route.route_handler_map.items():
            data = handler.parsed_fn_signature.parameters.get("data")
            operation = getattr(item, method.lower(), None)
            body = operation.request_body if operation is not None else None
            if data is not None and data.is_optional and isinstance(body, RequestBody):
                body.required = False


def _complete_refusals(path: str, method: str, operation: Operation) -> None:
    responses = operation.responses if operation.responses is not None else {}
    operation.responses = responses
    for status in [s for s, r in responses.items() if s[0] in "45" and _is_framework_error(r)]:
        del responses[status]
    kinds = {p.param_in for p in operation.parameters or [] if not isinstance(p, Reference)}
    codes = ["INTERNAL_ERROR"]
    if kinds or operation.request_body is not None:
        codes.append("VALIDATION_ERROR")
    if "path" in kinds:
        codes.append("NOT_FOUND")
    if operation.request_body is not None:
        codes += ["PAYLOAD_TOO_LARGE", "UNSUPPORTED_MEDIA_TYPE"]
    if operation.security:
        codes += ["UNAUTHENTICATED", "INVALID_TOKEN", "RATE_LIMITED", "CONCURRENCY_LIMITED"]
        if stores_data(method, path):
            codes.append("STORAGE_QUOTA_EXCEEDED")
    by_status: dict[str, list[str]] = {}
    for code in codes:
        by_status.setdefault(str(status_of(code)), []).append(code)
    for status, group in by_status.items():
        if status not in responses:
            responses[status] = _envelope_response(group)


def _envelope_response(codes: list[str]) -> OpenAPIResponse:
    return OpenAPIResponse(
        description=" or ".join(codes),
        content={
            "application/json": OpenAPIMediaType(
                schema=Reference(ref=f"#/components/schemas/{ENVELOPE}"),
                examples={code: Example(summary=code, value=error_example(code)) for code in codes},
            )
        },
    )


def _is_framework_error(response: Any) -> bool:
    """Litestar's own `{status_code, detail, extra}` error body, which is never sent."""
    if not isinstance(response, OpenAPIResponse):
        return False
    for media in (response.content or {}).values():
        schema = media.schema
        if isinstance(schema, Schema) and set(schema.properties or {}) >= {"status_code", "detail"}:
            return True
    return False


def _refuse_unknown_fields(components: Components, operation: Operation) -> None:
    body = operation.request_body
    media = body.content.get("application/json") if isinstance(body, RequestBody) else None
    if media is None:
        return
    schema = media.schema
    options = (schema.one_of or schema.any_of or []) if isinstance(schema, Schema) else []
    for candidate in [schema, *options]:
        resolved = _resolve(components, candidate)
        if isinstance(resolved, Schema) and resolved.properties is not None:
            resolved.additional_properties = False


NO_NUL = r"^[^\x00]*$"


def _refuse_nul(components: Components, operation: Operation) -> None:
    """Every string of a JSON request body, at any depth, is documented as holding no NUL."""
    body = operation.request_body
    media = body.content.get("application/json") if isinstance(body, RequestBody) else None
    if media is not None:
        _strings_without_nul(components, media.schema, set())


def _strings_without_nul(components: Components, schema: Any, seen: set[int]) -> None:
    if isinstance(schema, Reference):
        name = schema.ref.rsplit("/", 1)[-1]
        schema = (components.schemas or {}).get(name)
    if not isinstance(schema, Schema) or id(schema) in seen:
        return
    seen.add(id(schema))
    kinds = schema.type if isinstance(schema.type, list) else [schema.type]
    is_string = "string" in [getattr(k, "value", k) for k in kinds]
    if is_string and schema.pattern is None and schema.enum is None and schema.const is None:
        schema.pattern = NO_NUL
    children = [*(schema.properties or {}).values(), *(schema.one_of or []),
                *(schema.any_of or []), *(schema.all_of or [])]  # fmt: skip
    if isinstance(schema.items, (Schema, Reference)):
        children.append(schema.items)
    if isinstance(schema.additional_properties, (Schema, Reference)):
        children.append(schema.additional_properties)
    for child in children:
        _strings_without_nul(components, child, seen)


def _resolve(components: Components, schema: Any) -> Any:
    """The object schema behind a reference, or behind an `allOf` of one (examples beside it)."""
    if isinstance(schema, Schema) and schema.all_of and len(schema.all_of) == 1:
        schema = schema.all_of[0]
    if isinstance(schema, Reference):
        schema = (components.schemas or {}).get(schema.ref.rsplit("/", 1)[-1])
    return schema


def _add_links(components: Components, operations: list[tuple[str, str, Operation]]) -> None:
    takes: dict[str, list[Operation]] = {}
    for path, _, operation in operations:
        for name in _path_parameters(path):
            takes.setdefault(name, []).append(operation)
    for _, _, operation in operations:
        created = (operation.responses or {}).get("201")
        if not isinstance(created, OpenAPIResponse):
            continue
        fields = _body_fields(components, created)
        links = {
            target.operation_id: Link(
                operation_id=target.operation_id,
                parameters={f"path.{name}": f"$response.body#/{name}"},
                description=f"the {name} of the created resource",
            )
            for name in fields
            for target in takes.get(name, [])
            if target.operation_id
        }
        if links:
            created.links = {**(created.links or {}), **links}


def _path_parameters(path: str) -> list[str]:
    return [part[1:-1] for part in path.split("/") if part.startswith("{") and part.endswith("}")]


def _body_fields(components: Components, response: OpenAPIResponse) -> list[str]:
    media = (response.content or {}).get("application/json")
    schema = _resolve(components, media.schema if media is not None else None)
    if not isinstance(schema, Schema):
        return []
    return list(schema.properties or {})
