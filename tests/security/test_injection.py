"""Hostile input through the API: SQL injection and script tags."""

from __future__ import annotations

import httpx
import psycopg
import pytest

from tests.peers.http import HASH, Api

pytestmark = [pytest.mark.security, pytest.mark.e2e, pytest.mark.postgres]

INJECTIONS = [
    "x'; DROP TABLE tenants; --",
    "' OR '1'='1",
    'acme"; SELECT pg_sleep(5); --',
    "a%27%20OR%201=1",
    "$$; DELETE FROM tenants; $$",
]


def _count(platform: httpx.Client) -> int:
    return int(platform.get("/v1/tenants", params={"limit": 1}).json()["total"])


@pytest.mark.parametrize("slug", INJECTIONS)
def test_sql_in_the_slug_is_an_invalid_slug(platform: httpx.Client, slug: str) -> None:
    before = _count(platform)
    response = platform.post(
        "/v1/tenants",
        json={
            "tenant_name": "Injected Inc",
            "tenant_slug": slug,
            "admin_email": "i@inj.example.com",
            "constitutional_hash": HASH,
        },
    )
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "INVALID_TENANT_SLUG"
    assert _count(platform) == before


def test_sql_in_the_name_is_stored_verbatim(api: Api, platform: httpx.Client, unique: str) -> None:
    name = f"Robert'); DROP TABLE tenants; -- {unique}"
    api.wait_projected()  # tenants other tests made are counted before, not during, this one
    before = _count(platform)
    created = api.create_tenant(platform, f"bobby-{unique}", tenant_name=name)
    assert created["tenant_name"] == name
    detail = platform.get(f"/v1/tenants/{created['tenant_id']}").json()
    assert detail["tenant_name"] == name
    assert _count(platform) == before + 1
    with psycopg.connect(api.system.admin_url) as conn:
        stored = conn.execute(
            "SELECT convert_to(tenant_name, 'UTF8') FROM tenants WHERE tenant_id = %s",
            [created["tenant_id"]],
        ).fetchall()
    assert stored == [(name.encode(),)]  # byte for byte, nothing escaped or cut


@pytest.mark.parametrize(
    "params",
    [
        {"status": "active' OR '1'='1"},
        {"limit": "1; DROP TABLE tenants"},
        {"offset": "0 UNION SELECT password FROM pg_shadow"},
    ],
)
def test_sql_in_query_parameters_is_a_validation_error(
    platform: httpx.Client, params: dict[str, str]
) -> None:
    response = platform.get("/v1/tenants", params=params)
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "VALIDATION_ERROR"
    (value,) = params.values()
    for echoed in (value, "'1'='1", "DROP", "UNION", "pg_shadow"):  # nor any piece of it
        assert echoed not in response.text


@pytest.mark.parametrize(
    "path",
    [
        "/v1/tenants/1%20OR%201=1",
        "/v1/tenants/'%20OR%20'1'='1",
        "/v1/tenants/00000000-0000-0000-0000-000000000000'--",
    ],
)
def test_sql_in_the_path_is_not_found(platform: httpx.Client, path: str) -> None:
    response = platform.get(path)
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "NOT_FOUND"


def test_a_script_tag_in_the_name_is_stored_verbatim_and_served_only_as_json(
    api: Api, platform: httpx.Client, unique: str
) -> None:
    name = f"<script>alert('x')</script> {unique}"
    created = api.create_tenant(platform, f"xss-{unique}", tenant_name=name)
    response = platform.get(f"/v1/tenants/{created['tenant_id']}")
    assert response.json()["tenant_name"] == name
    assert response.headers["content-type"] == "application/json"
    assert response.headers["x-content-type-options"] == "nosniff"
    assert "script-src" not in response.headers["content-security-policy"]
    assert "default-src 'none'" in response.headers["content-security-policy"]
    listed = platform.get("/v1/tenants", params={"limit": 1000})
    assert listed.headers["content-type"] == "application/json"
    assert name in {t["tenant_name"] for t in listed.json()["tenants"]}


@pytest.mark.parametrize(
    ("method", "path_suffix", "body"),
    [
        (
            "POST",
            "",
            {
                "tenant_name": "Hashless Inc",
                "tenant_slug": "hashless",
                "admin_email": "h@h.example.com",
            },
        ),
        ("PATCH", "/{id}", {"tenant_name": "Hashless Two"}),
        ("DELETE", "/{id}", None),
        ("POST", "/{id}/reactivate", None),
    ],
)
def test_writes_without_or_with_a_wrong_hash_are_refused_and_write_nothing(
    api: Api,
    platform: httpx.Client,
    unique: str,
    method: str,
    path_suffix: str,
    body: dict[str, str] | None,
) -> None:
    tenant_id = api.create_tenant(platform, f"hashsec-{unique}")["tenant_id"]
    path = "/v1/tenants" + path_suffix.format(id=tenant_id)
    for headers, status, code in (
        ({}, 400, "CONSTITUTIONAL_HASH_REQUIRED"),
        ({"X-Constitutional-Hash": "deadbeefdeadbeef"}, 409, "CONSTITUTIONAL_HASH_MISMATCH"),
        ({"X-Constitutional-Hash": ""}, 400, "CONSTITUTIONAL_HASH_REQUIRED"),
    ):
        before = api.head()
        response = platform.request(method, path, json=body, headers=headers)
        assert response.status_code == status, response.text
        assert response.json()["error"]["code"] == code
        assert api.head() == before + 1  # only the audit record of the refusal
    api.wait_projected()
    assert platform.get(f"/v1/tenants/{tenant_id}").json()["status"] == "active"
