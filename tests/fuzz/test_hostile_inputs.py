"""Hostile requests Schemathesis does not make by itself, sent to every operation of the served
document (so a route added later gets them too): JSON nested far beyond the parser's limit,
huge numbers, NUL and lone surrogates, duplicate keys, bodies of the wrong media type, oversized
headers and bearer tokens, and path segments with encoded slashes and dots.

Each must get a 4xx in the one envelope (never a 5xx), write nothing, and leave the service
answering."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from api.http.errors import STATUS_BY_CODE
from tests.fuzz.world import World
from tests.peers.http import HASH

# The read models follow the log while these run (a refused write is audited: an event), so
# /readyz, one of the operations, does not turn unready because they fell 5 s behind.
pytestmark = [
    pytest.mark.e2e,
    pytest.mark.postgres,
    pytest.mark.security,
    pytest.mark.usefixtures("projections_following"),
]

DEEP = 5000
HOSTILE_BODIES: dict[str, bytes] = {
    "arrays nested 5000 deep": b"[" * DEEP + b"]" * DEEP,
    "objects nested 5000 deep": b'{"a":' * DEEP + b"1" + b"}" * DEEP,
    "a field nested 5000 deep": b'{"tenant_name":' + b"[" * DEEP + b"]" * DEEP + b"}",
    "a 400-digit integer": b'{"max_storage_gb": 1' + b"0" * 400 + b"}",
    "a number beyond float range": b'{"max_storage_gb": 1e400}',
    "a negative huge integer": b'{"max_requests_per_minute": -' + b"9" * 40 + b"}",
    "a NUL in a string": b'{"tenant_name": "Acme\\u0000Corp"}',
    "a raw NUL byte": b'{"tenant_name": "Acme\x00Corp"}',
    "a lone high surrogate": b'{"tenant_name": "Acme \\ud800 Corp"}',
    "a lone low surrogate": b'{"tenant_name": "\\udc00"}',
    "invalid UTF-8": b'{"tenant_name": "\xff\xfe"}',
    "duplicate keys": b'{"tenant_name": "A", "tenant_name": "B"}',
    "NaN": b'{"max_storage_gb": NaN}',
    "a bare string": b'"hello"',
    "null": b"null",
    "a truncated object": b'{"tenant_name": ',
    "a UTF-8 byte order mark": b'\xef\xbb\xbf{"tenant_name": "x"}',
}
WRONG_MEDIA_TYPES = (
    "application/x-www-form-urlencoded",
    "multipart/form-data; boundary=x",
    "text/plain",
    "application/xml",
    "application/jsonx",
)
ENCODED_SEGMENTS = (
    "..%2f..%2fhealthz",
    "%2e%2e",
    "%2e%2e%2f%2e%2e",
    "..;",
    "%252e%252e%252f",
    "a%2fb",
    "%00",
    "%c0%ae%c0%ae",
    "%ff",
    "%20",
)  # (plain "." and ".." are resolved by the client before sending, as RFC 3986 says)


def _operations(world: World) -> list[tuple[str, str, dict[str, Any]]]:
    with httpx.Client(base_url=world.url, timeout=30) as anonymous:
        document = anonymous.get("/schema").json()
    found = [
        (method.upper(), path, operation)
        for path, item in document["paths"].items()
        for method, operation in item.items()
        if method in {"get", "put", "post", "patch", "delete"}
    ]
    assert len(found) >= 10
    return found


def _json_body(operation: dict[str, Any]) -> bool:
    """Whether the operation takes a JSON body (a file upload takes multipart/form-data)."""
    return "application/json" in operation.get("requestBody", {}).get("content", {})


def _path(world: World, template: str, segment: str | None = None) -> str:
    own = str(world.principals["tenant_admin"].tenant_id)
    return re.sub(r"\{[^}]+\}", segment if segment is not None else own, template)


def _refused(response: httpx.Response, *statuses: int) -> dict[str, Any]:
    assert response.status_code < 500, response.text
    assert response.status_code in statuses, (response.status_code, response.text[:300])
    body = response.json()
    assert list(body) == ["error"], body
    error: dict[str, Any] = body["error"]
    assert error["constitutional_hash"] == HASH
    assert STATUS_BY_CODE[error["code"]] == response.status_code
    return error


@pytest.fixture
def platform(world: World) -> Iterator[httpx.Client]:
    headers = {**world.principals["platform"].headers, "X-Constitutional-Hash": HASH}
    with httpx.Client(base_url=world.url, headers=headers, timeout=60) as client:
        yield client


def test_hostile_bodies_to_every_operation_that_takes_one(
    world: World, platform: httpx.Client
) -> None:
    with_body = [(m, p, op) for m, p, op in _operations(world) if _json_body(op)]
    assert with_body
    head = world.api.head()
    for method, template, operation in with_body:
        for name, raw in HOSTILE_BODIES.items():
            if name == "null" and not operation["requestBody"].get("required"):
                continue  # an optional body may be null (tests/e2e/test_validation_api.py)
            response = platform.request(
                method,
                _path(world, template),
                content=raw,
                headers={"Content-Type": "application/json"},
            )
            assert response.status_code == 422, (method, template, name, response.text)
            error = _refused(response, 422)
            assert error["code"] == "VALIDATION_ERROR", (method, template, name, error)
            assert b"Acme" not in response.content or name == "duplicate keys"
    assert world.api.head() == head  # nothing was written


def test_deep_nesting_is_refused_on_every_operation_even_without_a_body(
    world: World, platform: httpx.Client
) -> None:
    """Routes without a body ignore one; deep nesting must not hurt them either."""
    for method, template, _ in _operations(world):
        response = platform.request(
            method,
            _path(world, template),
            content=HOSTILE_BODIES["arrays nested 5000 deep"],
            headers={"Content-Type": "application/json"},
        )
        assert response.status_code < 500, (method, template, response.text)


def test_wrong_media_types_are_415(world: World, platform: httpx.Client) -> None:
    with_body = [(m, p) for m, p, op in _operations(world) if _json_body(op)]
    for method, template in with_body:
        for media_type in WRONG_MEDIA_TYPES:
            response = platform.request(
                method,
                _path(world, template),
                content=b'{"constitutional_hash": "' + HASH.encode() + b'"}',
                headers={"Content-Type": media_type},
            )
            _refused(response, 415)


def test_oversized_headers_and_tokens(world: World) -> None:
    huge_token = "eyJ" + "A" * 60_000
    for method, template, _ in _operations(world):
        path = _path(world, template)
        with httpx.Client(base_url=world.url, timeout=60) as client:
            for headers in (
                {"Authorization": f"Bearer {huge_token}"},
                {"Authorization": "Bearer " + "a.b.c" * 2000},
                {"Authorization": "Basic " + "A" * 30_000},
                {"Authorization": "Bearer \u00e9t\u00e9\x7f".encode()},
                {"X-Constitutional-Hash": "f" * 50_000, "X-Request-ID": "r" * 50_000},
                {"Idempotency-Key": "k" * 50_000, **world.principals["platform"].headers},
                {"X-Pad-" + str(i): "v" * 4000 for i in range(20)},
            ):
                try:
                    response = client.request(method, path, headers=headers)
                except httpx.RemoteProtocolError:
                    continue  # the HTTP server dropped an oversized request: not a 5xx
                assert response.status_code < 500, (method, template, response.text[:300])
                if response.status_code >= 400 and response.headers.get(
                    "content-type", ""
                ).startswith("application/json"):
                    assert response.json()["error"]["constitutional_hash"] == HASH
                assert huge_token not in response.text


def test_encoded_slashes_and_dots_in_path_segments(world: World, platform: httpx.Client) -> None:
    templated = [(m, p) for m, p, _ in _operations(world) if "{" in p]
    assert templated
    for method, template in templated:
        for segment in ENCODED_SEGMENTS:
            response = platform.request(method, _path(world, template, segment), content=b"")
            # an id that is not one, or a path that matches no route: 404, 405 or 422, never 5xx
            _refused(response, 404, 405, 422)
    with httpx.Client(base_url=world.url, timeout=30) as anonymous:
        # dots and encoded slashes never escape /v1 into an unauthenticated route, nor back
        for path in ("/v1/..%2fhealthz", "/v1/%2e%2e/metrics", "/v1/tenants/..%2f..%2fschema"):
            _refused(anonymous.get(path), 401, 404)
    assert platform.get("/healthz").status_code == 200
