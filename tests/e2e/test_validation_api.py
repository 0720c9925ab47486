"""Validation over real HTTP: every problem of a body at once, in the one envelope, never a 500
(also for bodies nested far beyond the JSON parser's limit), and clear answers for the wrong
media type and a malformed constitutional hash."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from api.http.bodies import MAX_BODY_DEPTH
from tests.peers.http import HASH, Api

pytestmark = [pytest.mark.e2e, pytest.mark.postgres]


def _error(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body = response.json()
    assert list(body) == ["error"]
    assert body["error"]["code"] == code, body
    assert body["error"]["constitutional_hash"] == HASH
    return dict(body["error"])


def _fields(error: dict[str, Any]) -> dict[str, str]:
    return {f["field"]: f["message"] for f in error["details"]["fields"]}


def _post(client: httpx.Client, path: str, raw: bytes, **headers: str) -> httpx.Response:
    return client.post(path, content=raw, headers={"Content-Type": "application/json", **headers})


@pytest.mark.parametrize(
    "raw",
    [b"[" * 5000 + b"]" * 5000, b'{"a":' * 5000 + b"1" + b"}" * 5000],
    ids=["arrays", "objects"],
)
def test_json_nested_beyond_the_parser_limit_is_422_not_500(
    platform: httpx.Client, raw: bytes
) -> None:
    error = _error(_post(platform, "/v1/tenants", raw), 422, "VALIDATION_ERROR")
    assert _fields(error) == {"body": f"nests deeper than {MAX_BODY_DEPTH} levels"}


def test_the_depth_limit_is_exact(platform: httpx.Client) -> None:
    def nested(depth: int) -> bytes:
        return b'{"tenant_name":' + b"[" * (depth - 1) + b"]" * (depth - 1) + b"}"

    at_limit = _error(
        _post(platform, "/v1/tenants", nested(MAX_BODY_DEPTH)), 422, "VALIDATION_ERROR"
    )
    assert "nests deeper" not in str(at_limit)  # refused for its fields, not its depth
    beyond = _error(
        _post(platform, "/v1/tenants", nested(MAX_BODY_DEPTH + 1)), 422, "VALIDATION_ERROR"
    )
    assert _fields(beyond) == {"body": f"nests deeper than {MAX_BODY_DEPTH} levels"}


def test_every_problem_of_a_body_is_reported_at_once(platform: httpx.Client) -> None:
    only_hash = _error(
        platform.post("/v1/tenants", json={"constitutional_hash": HASH}), 422, "VALIDATION_ERROR"
    )
    assert _fields(only_hash) == {
        "tenant_name": "is required",
        "tenant_slug": "is required",
        "admin_email": "is required",
    }
    assert all(f["source"] == "body" for f in only_hash["details"]["fields"])
    mixed = _error(
        platform.post(
            "/v1/tenants",
            json={
                "tenant_name": 7,
                "tenant_slug": "ok-slug",
                "tenant_id": "x",
                "colour": "blue",
                "max_storage_gb": "ten",
                "constitutional_hash": HASH,
            },
        ),
        422,
        "VALIDATION_ERROR",
    )
    assert _fields(mixed) == {
        "tenant_id": "is read-only",
        "colour": "unknown field",
        "tenant_name": "Expected `str`, got `int`",
        "admin_email": "is required",
        "max_storage_gb": "Expected `int`, got `str`",
    }
    assert "blue" not in str(mixed)  # values are not echoed


def test_an_empty_or_non_object_body_is_named_as_the_body(platform: httpx.Client) -> None:
    empty = _error(_post(platform, "/v1/tenants", b""), 422, "VALIDATION_ERROR")
    assert _fields(empty) == {"body": "is required (a JSON object)"}
    array = _error(platform.post("/v1/tenants", json=[1, 2]), 422, "VALIDATION_ERROR")
    assert _fields(array) == {"body": "must be a JSON object"}


def test_query_errors_name_their_source_plainly(platform: httpx.Client) -> None:
    error = _error(platform.get("/v1/tenants", params={"limit": 0}), 422, "VALIDATION_ERROR")
    assert error["details"]["fields"][0]["source"] == "query"
    assert error["details"]["fields"][0]["field"] == "limit"
    both = _error(
        platform.get("/v1/tenants", params={"limit": 0, "offset": -1, "status": "gone"}),
        422,
        "VALIDATION_ERROR",
    )
    assert {(f["field"], f["source"]) for f in both["details"]["fields"]} == {
        ("limit", "query"),
        ("offset", "query"),
        ("status", "query"),
    }


def test_a_form_encoded_body_is_415(platform: httpx.Client, unique: str) -> None:
    response = platform.post(
        "/v1/tenants",
        data={"tenant_name": "Form", "tenant_slug": f"form-{unique}", "admin_email": "a@b.co"},
        headers={"X-Constitutional-Hash": HASH},
    )
    _error(response, 415, "UNSUPPORTED_MEDIA_TYPE")
    text = platform.post("/v1/tenants", content=b"{}", headers={"Content-Type": "text/plain"})
    _error(text, 415, "UNSUPPORTED_MEDIA_TYPE")


def test_a_malformed_hash_is_a_validation_error_naming_where_it_came_from(
    api: Api, platform: httpx.Client, unique: str
) -> None:
    tenant = api.create_tenant(platform, f"mal-{unique}")
    path = f"/v1/tenants/{tenant['tenant_id']}"
    in_header = _error(
        platform.patch(path, json={"max_storage_gb": 2}, headers={"X-Constitutional-Hash": "XYZ"}),
        422,
        "VALIDATION_ERROR",
    )
    assert _fields(in_header) == {
        "X-Constitutional-Hash": "must be 16 lowercase hexadecimal characters"
    }
    in_body = _error(
        platform.patch(path, json={"max_storage_gb": 2, "constitutional_hash": "XYZ"}),
        422,
        "VALIDATION_ERROR",
    )
    assert _fields(in_body) == {
        "constitutional_hash": "must be 16 lowercase hexadecimal characters"
    }
    # a well-formed hash of another constitution is still a mismatch
    _error(
        platform.patch(path, json={"max_storage_gb": 2, "constitutional_hash": "0" * 16}),
        409,
        "CONSTITUTIONAL_HASH_MISMATCH",
    )


def test_the_missing_hash_error_names_the_header_and_the_body_field(
    platform: httpx.Client, unique: str
) -> None:
    error = _error(
        platform.post(
            "/v1/tenants",
            json={
                "tenant_name": f"NoHash {unique}",
                "tenant_slug": f"nohash-{unique}",
                "admin_email": "a@b.example.com",
            },
        ),
        400,
        "CONSTITUTIONAL_HASH_REQUIRED",
    )
    assert "X-Constitutional-Hash" in error["message"]
    assert "constitutional_hash" in error["message"].replace("X-Constitutional-Hash", "")
    assert error["details"] == {
        "body_field": "constitutional_hash",
        "header": "X-Constitutional-Hash",
    }


def test_an_optional_body_may_be_json_null(api: Api, platform: httpx.Client, unique: str) -> None:
    """Found by the fuzzer: the document allows `null` for reactivate's optional body."""
    tenant = api.create_tenant(platform, f"null-{unique}")
    response = _post(
        platform,
        f"/v1/tenants/{tenant['tenant_id']}/reactivate",
        b"null",
        **{"X-Constitutional-Hash": HASH},
    )
    _error(response, 409, "INVALID_STATE_TRANSITION")  # it is active: refused for that only
