"""Tenant management over real HTTP against the real database."""

from __future__ import annotations

import base64
import secrets
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

import httpx
import psycopg
import pytest

from api.http.quotas.storage import StorageMeter
from domain.maci import MaciRole
from tests.peers.http import HASH, Api, ManualClock

pytestmark = [pytest.mark.e2e, pytest.mark.postgres]


def _error(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"code", "message", "details", "constitutional_hash"}
    assert body["error"]["code"] == code
    assert body["error"]["constitutional_hash"] == HASH
    assert response.headers["x-constitutional-hash"] == HASH
    return dict(body["error"])


def _event_head(api: Api) -> int:
    return api.head()


# --- create ------------------------------------------------------------------------------------


def test_create_succeeds_with_201_and_the_digest_shape(
    api: Api, platform: httpx.Client, unique: str
) -> None:
    response = platform.post(
        "/v1/tenants",
        json={
            "tenant_name": f"Acme {unique}",
            "tenant_slug": f"acme-{unique}",
            "admin_email": "admin@acme.com",
            "billing_plan": "enterprise",
            "max_requests_per_minute": 5000,
            "max_storage_gb": 100,
            "max_concurrent_connections": 500,
            "constitutional_hash": HASH,
        },
    )
    assert response.status_code == 201, response.text
    body = response.json()
    UUID(body["tenant_id"])
    assert body["tenant_name"] == f"Acme {unique}"
    assert body["tenant_slug"] == f"acme-{unique}"
    assert body["status"] == "active"
    assert body["created_at"].endswith("Z")
    assert body["constitutional_hash"] == HASH
    assert body["api_endpoint"] == f"https://acme-{unique}.api.acgs2.com"
    assert (
        body["max_requests_per_minute"],
        body["max_storage_gb"],
        body["max_concurrent_connections"],
    ) == (5000, 100, 500)
    assert response.headers["x-constitutional-hash"] == HASH


def test_default_quotas_are_applied(api: Api, platform: httpx.Client, unique: str) -> None:
    created = api.create_tenant(platform, f"defaults-{unique}")
    assert (
        created["max_requests_per_minute"],
        created["max_storage_gb"],
        created["max_concurrent_connections"],
    ) == (1000, 10, 100)
    assert created["billing_plan"] == "standard"


def test_duplicate_slug_is_rejected_with_409(api: Api, platform: httpx.Client, unique: str) -> None:
    api.create_tenant(platform, f"dup-{unique}")
    response = platform.post(
        "/v1/tenants",
        json={
            "tenant_name": f"Other {unique}",
            "tenant_slug": f"dup-{unique}",
            "admin_email": "a@b.example.com",
            "constitutional_hash": HASH,
        },
    )
    _error(response, 409, "TENANT_SLUG_TAKEN")


def test_duplicate_name_is_rejected_with_409(api: Api, platform: httpx.Client, unique: str) -> None:
    api.create_tenant(platform, f"name-{unique}", tenant_name=f"Same Name {unique}")
    response = platform.post(
        "/v1/tenants",
        json={
            "tenant_name": f"Same Name {unique}",
            "tenant_slug": f"name2-{unique}",
            "admin_email": "a@b.example.com",
            "constitutional_hash": HASH,
        },
    )
    _error(response, 409, "TENANT_NAME_TAKEN")


@pytest.mark.parametrize(
    "slug", ["Invalid_Slug", "UPPER", "has space", "semi;colon", "-lead", "a--b", "ab"]
)
def test_invalid_slug_is_rejected_with_422(platform: httpx.Client, slug: str) -> None:
    response = platform.post(
        "/v1/tenants",
        json={
            "tenant_name": "Bad Slug Inc",
            "tenant_slug": slug,
            "admin_email": "a@b.example.com",
            "constitutional_hash": HASH,
        },
    )
    error = _error(response, 422, "INVALID_TENANT_SLUG")
    assert error["details"]["field"] == "tenant_slug"
    assert error["details"]["constraint"] == "^[a-z0-9-]+$"


@pytest.mark.parametrize("missing", ["tenant_name", "tenant_slug", "admin_email"])
def test_missing_required_fields_are_rejected_with_422(
    platform: httpx.Client, unique: str, missing: str
) -> None:
    body = {
        "tenant_name": "Needs All",
        "tenant_slug": f"miss-{unique}",
        "admin_email": "a@b.example.com",
        "constitutional_hash": HASH,
    }
    del body[missing]
    error = _error(platform.post("/v1/tenants", json=body), 422, "VALIDATION_ERROR")
    assert error["details"]["fields"][0]["field"] == missing


def test_unknown_and_invalid_fields_are_rejected_with_422(
    platform: httpx.Client, unique: str
) -> None:
    base = {
        "tenant_name": "Fields Inc",
        "tenant_slug": f"fields-{unique}",
        "admin_email": "a@b.example.com",
        "constitutional_hash": HASH,
    }
    unknown = platform.post("/v1/tenants", json={**base, "favourite_colour": "blue"})
    assert _error(unknown, 422, "VALIDATION_ERROR")["details"]["fields"][0] == {
        "field": "favourite_colour",
        "message": "unknown field",
        "source": "body",
    }
    for bad in (
        {"admin_email": "not-an-email"},
        {"max_requests_per_minute": 0},
        {"max_storage_gb": "ten"},
        {"billing_plan": "gold"},
        {"tenant_name": "ab"},
    ):
        _error(platform.post("/v1/tenants", json={**base, **bad}), 422, "VALIDATION_ERROR")
    malformed = platform.post(
        "/v1/tenants", content=b"{not json", headers={"content-type": "application/json"}
    )
    _error(malformed, 422, "VALIDATION_ERROR")


def test_create_needs_the_constitutional_hash_and_writes_nothing_without_it(
    api: Api, platform: httpx.Client, unique: str
) -> None:
    body = {
        "tenant_name": f"Hash {unique}",
        "tenant_slug": f"hash-{unique}",
        "admin_email": "a@b.example.com",
    }
    _error(platform.post("/v1/tenants", json=body), 400, "CONSTITUTIONAL_HASH_REQUIRED")
    _error(
        platform.post("/v1/tenants", json={**body, "constitutional_hash": "0000000000000000"}),
        409,
        "CONSTITUTIONAL_HASH_MISMATCH",
    )
    _error(
        platform.post(
            "/v1/tenants", json=body, headers={"X-Constitutional-Hash": "0123456789abcdef"}
        ),
        409,
        "CONSTITUTIONAL_HASH_MISMATCH",
    )
    # nothing was created: the slug is still free
    created = platform.post("/v1/tenants", json=body, headers={"X-Constitutional-Hash": HASH})
    assert created.status_code == 201, created.text


def test_only_a_platform_executive_creates_tenants(api: Api, unique: str) -> None:
    body = {
        "tenant_name": f"Perm {unique}",
        "tenant_slug": f"perm-{unique}",
        "admin_email": "a@b.example.com",
        "constitutional_hash": HASH,
    }
    with api.client(api.token(MaciRole.AUDITOR)) as auditor:
        _error(auditor.post("/v1/tenants", json=body), 403, "FORBIDDEN")
    with api.client(api.token(MaciRole.JUDICIAL)) as judicial:
        _error(judicial.post("/v1/tenants", json=body), 403, "FORBIDDEN")


# --- read and list -----------------------------------------------------------------------------


def test_get_by_id_returns_every_field_and_live_usage(
    api: Api, platform: httpx.Client, unique: str
) -> None:
    created = api.create_tenant(platform, f"get-{unique}", billing_plan="enterprise")
    response = platform.get(f"/v1/tenants/{created['tenant_id']}")
    assert response.status_code == 200, response.text
    body = response.json()
    assert {
        k: body[k]
        for k in (
            "tenant_id",
            "tenant_slug",
            "status",
            "billing_plan",
            "admin_email",
            "constitutional_hash",
        )
    } == {
        "tenant_id": created["tenant_id"],
        "tenant_slug": f"get-{unique}",
        "status": "active",
        "billing_plan": "enterprise",
        "admin_email": f"admin@get-{unique}.example.com",
        "constitutional_hash": HASH,
    }
    assert body["created_at"] == created["created_at"]
    usage = body["usage_stats"]
    assert set(usage) == {
        "current_requests_per_minute",
        "current_storage_gb",
        "current_connections",
    }
    # only its own creation's audit record so far (about 600 bytes with its hash chain): at
    # most 0.000001 GB to 6 places
    assert usage["current_storage_gb"] <= 0.000001
    assert usage["current_requests_per_minute"] == 0  # nobody of that tenant has called yet


def test_storage_usage_is_measured_from_the_tenants_rows(
    api: Api, platform: httpx.Client, unique: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = ManualClock()
    monkeypatch.setattr(api.services, "storage", StorageMeter(api.system.database, clock=clock))
    tenant_id = UUID(api.create_tenant(platform, f"bytes-{unique}")["tenant_id"])
    assert (
        platform.get(f"/v1/tenants/{tenant_id}").json()["usage_stats"]["current_storage_gb"]
        <= 0.000001
    )
    # 3 MiB of random base64 text: PostgreSQL cannot compress it, so it is stored as written
    written = base64.b64encode(secrets.token_bytes(3 * 1024 * 1024 * 3 // 4)).decode()
    assert len(written) == 3 * 1024 * 1024
    with psycopg.connect(api.system.admin_url, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO policies (name, rego, tenant_id) VALUES (%s, %s, %s)",
            [f"bulk-{unique}", written, tenant_id],
        )
        try:
            # measured at most every 10 s: the cached figure holds until then
            clock.now += 9.9
            cached = platform.get(f"/v1/tenants/{tenant_id}").json()["usage_stats"]
            assert cached["current_storage_gb"] <= 0.000001
            clock.now += 0.2
            usage = platform.get(f"/v1/tenants/{tenant_id}").json()["usage_stats"]
        finally:
            conn.execute("DELETE FROM policies WHERE tenant_id = %s", [tenant_id])
    # 3 MiB = 0.0029296875 GB, plus the row's own few dozen bytes and the audit record
    assert 0.002929 <= usage["current_storage_gb"] <= 0.002932


def test_usage_counts_the_tenants_own_requests_and_connections(
    api: Api, platform: httpx.Client, unique: str, limiter_clock: ManualClock
) -> None:
    created = api.create_tenant(platform, f"usage-{unique}")
    tenant_id = UUID(created["tenant_id"])
    with api.client(api.token(MaciRole.EXECUTIVE, tenant_id=tenant_id)) as own:
        for _ in range(3):
            assert own.get(f"/v1/tenants/{tenant_id}").status_code == 200
            limiter_clock.now += 15  # 0, 15, 30 s into the minute
        usage = own.get(f"/v1/tenants/{tenant_id}").json()["usage_stats"]  # at 45 s
        assert usage["current_requests_per_minute"] == 4
        assert usage["current_connections"] == 1  # this very request
        limiter_clock.now += 16  # 61 s: the first request has left the window
        usage = own.get(f"/v1/tenants/{tenant_id}").json()["usage_stats"]
        assert usage["current_requests_per_minute"] == 4  # 15, 30, 45 s and this one
        limiter_clock.now += 61  # a minute and a one-second bucket later
        usage = own.get(f"/v1/tenants/{tenant_id}").json()["usage_stats"]
        assert usage["current_requests_per_minute"] == 1  # only this one


def test_get_unknown_tenant_is_404(platform: httpx.Client) -> None:
    _error(platform.get("/v1/tenants/6f1c1b38-1c43-4f5e-8f1e-5a8f0c0b7d11"), 404, "NOT_FOUND")
    _error(platform.get("/v1/tenants/not-a-uuid"), 404, "NOT_FOUND")


def test_get_by_slug_through_the_list(api: Api, platform: httpx.Client, unique: str) -> None:
    created = api.create_tenant(platform, f"byslug-{unique}")
    page = platform.get("/v1/tenants", params={"limit": 1000}).json()
    found = [t for t in page["tenants"] if t["tenant_slug"] == f"byslug-{unique}"]
    assert [t["tenant_id"] for t in found] == [created["tenant_id"]]


def test_list_filters_by_status_and_pages(api: Api, platform: httpx.Client, unique: str) -> None:
    ids = [api.create_tenant(platform, f"list{i}-{unique}")["tenant_id"] for i in range(3)]
    deactivated = platform.delete(f"/v1/tenants/{ids[0]}", headers={"X-Constitutional-Hash": HASH})
    assert deactivated.status_code == 202
    api.wait_projected()
    page = platform.get("/v1/tenants", params={"status": "deactivated", "limit": 1000}).json()
    assert ids[0] in {t["tenant_id"] for t in page["tenants"]}
    assert all(t["status"] == "deactivated" for t in page["tenants"])
    first = platform.get("/v1/tenants", params={"limit": 2, "offset": 0}).json()
    second = platform.get("/v1/tenants", params={"limit": 2, "offset": 2}).json()
    assert (first["limit"], first["offset"], len(first["tenants"])) == (2, 0, 2)
    assert first["total"] >= 4
    assert first["total"] == second["total"]
    assert not {t["tenant_id"] for t in first["tenants"]} & {
        t["tenant_id"] for t in second["tenants"]
    }
    assert set(first["tenants"][0]) == {
        "tenant_id",
        "tenant_name",
        "tenant_slug",
        "status",
        "created_at",
    }
    default = platform.get("/v1/tenants").json()
    assert (default["limit"], default["offset"]) == (50, 0)


@pytest.mark.parametrize(
    "params",
    [{"limit": 0}, {"limit": 1001}, {"offset": -1}, {"status": "purged"}, {"limit": "many"}],
)
def test_list_rejects_bad_query_parameters_with_422(
    platform: httpx.Client, params: dict[str, Any]
) -> None:
    _error(platform.get("/v1/tenants", params=params), 422, "VALIDATION_ERROR")


def test_list_is_for_platform_auditors_judges_and_executives(api: Api, unique: str) -> None:
    for role in (MaciRole.AUDITOR, MaciRole.JUDICIAL, MaciRole.EXECUTIVE):
        with api.client(api.token(role)) as client:
            assert client.get("/v1/tenants").status_code == 200
    with api.client(api.token(MaciRole.MONITOR)) as monitor:
        _error(monitor.get("/v1/tenants"), 403, "FORBIDDEN")


# --- update ------------------------------------------------------------------------------------


def test_update_quotas_and_profile_lists_updated_fields(
    api: Api, platform: httpx.Client, unique: str
) -> None:
    tenant_id = api.create_tenant(platform, f"upd-{unique}")["tenant_id"]
    response = platform.patch(
        f"/v1/tenants/{tenant_id}",
        json={
            "max_requests_per_minute": 10000,
            "admin_email": "ops@upd.example.com",
            "billing_plan": "professional",
        },
        headers={"X-Constitutional-Hash": HASH},
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["updated_fields"] == ["admin_email", "billing_plan", "max_requests_per_minute"]
    assert body["tenant_id"] == tenant_id
    assert body["constitutional_hash"] == HASH
    api.wait_projected()
    detail = platform.get(f"/v1/tenants/{tenant_id}").json()
    assert (detail["max_requests_per_minute"], detail["admin_email"], detail["billing_plan"]) == (
        10000,
        "ops@upd.example.com",
        "professional",
    )
    assert detail["updated_at"] > detail["created_at"]


def test_status_transitions_active_suspended_deactivated(
    api: Api, platform: httpx.Client, unique: str
) -> None:
    tenant_id = api.create_tenant(platform, f"trans-{unique}")["tenant_id"]
    hdr = {"X-Constitutional-Hash": HASH}
    for status in ("suspended", "deactivated"):
        response = platform.patch(f"/v1/tenants/{tenant_id}", json={"status": status}, headers=hdr)
        assert response.status_code == 200, response.text
        assert response.json()["updated_fields"] == ["status"]
    refused = platform.patch(f"/v1/tenants/{tenant_id}", json={"status": "suspended"}, headers=hdr)
    _error(refused, 409, "INVALID_STATE_TRANSITION")
    api.wait_projected()
    assert platform.get(f"/v1/tenants/{tenant_id}").json()["status"] == "deactivated"


@pytest.mark.parametrize("field", ["tenant_id", "created_at", "tenant_slug", "updated_at"])
def test_read_only_fields_cannot_be_changed(
    api: Api, platform: httpx.Client, unique: str, field: str
) -> None:
    tenant_id = api.create_tenant(platform, f"ro-{field.replace('_', '')}-{unique}")["tenant_id"]
    head = _event_head(api)
    response = platform.patch(
        f"/v1/tenants/{tenant_id}",
        json={field: "x", "admin_email": "new@ro.example.com"},
        headers={"X-Constitutional-Hash": HASH},
    )
    error = _error(response, 422, "VALIDATION_ERROR")
    assert error["details"]["fields"][0] == {
        "field": field,
        "message": "is read-only",
        "source": "body",
    }
    assert _event_head(api) == head  # nothing written


def test_empty_update_is_422(api: Api, platform: httpx.Client, unique: str) -> None:
    tenant_id = api.create_tenant(platform, f"empty-{unique}")["tenant_id"]
    _error(
        platform.patch(
            f"/v1/tenants/{tenant_id}", json={}, headers={"X-Constitutional-Hash": HASH}
        ),
        422,
        "VALIDATION_ERROR",
    )


def test_update_needs_the_hash(api: Api, platform: httpx.Client, unique: str) -> None:
    tenant_id = api.create_tenant(platform, f"updhash-{unique}")["tenant_id"]
    head = _event_head(api)
    _error(
        platform.patch(f"/v1/tenants/{tenant_id}", json={"max_storage_gb": 20}),
        400,
        "CONSTITUTIONAL_HASH_REQUIRED",
    )
    _error(
        platform.patch(
            f"/v1/tenants/{tenant_id}",
            json={"max_storage_gb": 20},
            headers={"X-Constitutional-Hash": "ffffffffffffffff"},
        ),
        409,
        "CONSTITUTIONAL_HASH_MISMATCH",
    )
    # the refusals were audited (events), but the tenant is unchanged
    assert _event_head(api) == head + 2
    api.wait_projected()
    assert platform.get(f"/v1/tenants/{tenant_id}").json()["max_storage_gb"] == 10
    ok = platform.patch(
        f"/v1/tenants/{tenant_id}", json={"max_storage_gb": 20, "constitutional_hash": HASH}
    )
    assert ok.status_code == 200


def test_tenant_admin_updates_profile_but_not_quotas(
    api: Api, platform: httpx.Client, unique: str
) -> None:
    tenant_id = api.create_tenant(platform, f"admin-{unique}")["tenant_id"]
    hdr = {"X-Constitutional-Hash": HASH}
    with api.client(api.token(MaciRole.EXECUTIVE, tenant_id=UUID(tenant_id))) as admin:
        renamed = admin.patch(
            f"/v1/tenants/{tenant_id}", json={"tenant_name": f"Renamed {unique}"}, headers=hdr
        )
        assert renamed.status_code == 200, renamed.text
        assert renamed.json()["updated_fields"] == ["tenant_name"]
        _error(
            admin.patch(
                f"/v1/tenants/{tenant_id}", json={"max_requests_per_minute": 99999}, headers=hdr
            ),
            403,
            "FORBIDDEN",
        )
    with api.client(api.token(MaciRole.MONITOR, tenant_id=UUID(tenant_id))) as monitor:
        _error(
            monitor.patch(
                f"/v1/tenants/{tenant_id}", json={"tenant_name": "Nope Inc"}, headers=hdr
            ),
            403,
            "FORBIDDEN",
        )
        _error(monitor.get(f"/v1/tenants/{tenant_id}"), 403, "FORBIDDEN")


def test_update_of_unknown_tenant_is_404(platform: httpx.Client) -> None:
    _error(
        platform.patch(
            "/v1/tenants/6f1c1b38-1c43-4f5e-8f1e-5a8f0c0b7d11",
            json={"max_storage_gb": 20},
            headers={"X-Constitutional-Hash": HASH},
        ),
        404,
        "NOT_FOUND",
    )


# --- deactivate, purge, reactivate -------------------------------------------------------------


def test_soft_delete_has_a_30_day_grace_period(
    api: Api, platform: httpx.Client, unique: str
) -> None:
    tenant_id = api.create_tenant(platform, f"soft-{unique}")["tenant_id"]
    response = platform.delete(f"/v1/tenants/{tenant_id}", headers={"X-Constitutional-Hash": HASH})
    assert response.status_code == 202, response.text
    body = response.json()
    assert body["status"] == "deactivated"
    assert body["constitutional_hash"] == HASH
    deactivated = datetime.fromisoformat(body["deactivated_at"])
    assert datetime.fromisoformat(body["data_purge_scheduled"]) - deactivated == timedelta(days=30)
    api.wait_projected()
    detail = platform.get(f"/v1/tenants/{tenant_id}").json()
    assert detail["status"] == "deactivated"
    # Both the response (built from the aggregate) and the read model date the deactivation by
    # the Deactivated event's own timestamp.
    assert (detail["deactivated_at"], detail["data_purge_scheduled"]) == (
        body["deactivated_at"],
        body["data_purge_scheduled"],
    )


def test_reactivation_undoes_a_deactivation(api: Api, platform: httpx.Client, unique: str) -> None:
    tenant_id = api.create_tenant(platform, f"react-{unique}")["tenant_id"]
    hdr = {"X-Constitutional-Hash": HASH}
    assert platform.delete(f"/v1/tenants/{tenant_id}", headers=hdr).status_code == 202
    response = platform.post(f"/v1/tenants/{tenant_id}/reactivate", headers=hdr)
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "active"
    _error(
        platform.post(f"/v1/tenants/{tenant_id}/reactivate", json={"constitutional_hash": HASH}),
        409,
        "INVALID_STATE_TRANSITION",
    )
    api.wait_projected()
    detail = platform.get(f"/v1/tenants/{tenant_id}").json()
    assert (detail["status"], detail["deactivated_at"]) == ("active", None)


def test_immediate_purge_returns_purged_and_frees_the_slug(
    api: Api, platform: httpx.Client, unique: str
) -> None:
    slug = f"purge-{unique}"
    tenant_id = api.create_tenant(platform, slug)["tenant_id"]
    hdr = {"X-Constitutional-Hash": HASH}
    response = platform.delete(
        f"/v1/tenants/{tenant_id}", params={"immediate": "true"}, headers=hdr
    )
    assert response.status_code == 202, response.text
    assert response.json()["status"] == "purged"
    assert response.json()["purged_at"] is not None
    api.wait_projected()
    _error(platform.get(f"/v1/tenants/{tenant_id}"), 404, "NOT_FOUND")
    _error(platform.post(f"/v1/tenants/{tenant_id}/reactivate", headers=hdr), 404, "NOT_FOUND")
    _error(platform.delete(f"/v1/tenants/{tenant_id}", headers=hdr), 404, "NOT_FOUND")
    again = api.create_tenant(platform, slug, tenant_name=f"Second {unique}")
    assert again["tenant_id"] != tenant_id


def test_delete_and_reactivate_need_the_hash_and_a_platform_executive(
    api: Api, platform: httpx.Client, unique: str
) -> None:
    tenant_id = api.create_tenant(platform, f"delperm-{unique}")["tenant_id"]
    _error(platform.delete(f"/v1/tenants/{tenant_id}"), 400, "CONSTITUTIONAL_HASH_REQUIRED")
    _error(
        platform.delete(
            f"/v1/tenants/{tenant_id}", headers={"X-Constitutional-Hash": "0000000000000000"}
        ),
        409,
        "CONSTITUTIONAL_HASH_MISMATCH",
    )
    _error(
        platform.post(f"/v1/tenants/{tenant_id}/reactivate"), 400, "CONSTITUTIONAL_HASH_REQUIRED"
    )
    hdr = {"X-Constitutional-Hash": HASH}
    with api.client(api.token(MaciRole.EXECUTIVE, tenant_id=UUID(tenant_id))) as own_admin:
        _error(own_admin.delete(f"/v1/tenants/{tenant_id}", headers=hdr), 403, "FORBIDDEN")
    with api.client(api.token(MaciRole.AUDITOR)) as auditor:
        _error(auditor.delete(f"/v1/tenants/{tenant_id}", headers=hdr), 403, "FORBIDDEN")
    api.wait_projected()
    assert platform.get(f"/v1/tenants/{tenant_id}").json()["status"] == "active"


def test_the_system_tenant_cannot_be_deactivated(platform: httpx.Client) -> None:
    _error(
        platform.delete(
            "/v1/tenants/00000000-0000-0000-0000-000000000000",
            headers={"X-Constitutional-Hash": HASH},
        ),
        403,
        "FORBIDDEN",
    )


def test_refusals_are_audited_in_the_callers_tenant(
    api: Api, unique: str, platform: httpx.Client
) -> None:
    tenant_id = UUID(api.create_tenant(platform, f"audit-{unique}")["tenant_id"])
    with api.client(api.token(MaciRole.MONITOR, tenant_id=tenant_id, sub=f"m-{unique}")) as mon:
        _error(
            mon.patch(
                f"/v1/tenants/{tenant_id}",
                json={"tenant_name": "Nope Inc"},
                headers={"X-Constitutional-Hash": HASH},
            ),
            403,
            "FORBIDDEN",
        )
    api.wait_projected()
    import psycopg  # noqa: PLC0415

    with psycopg.connect(api.system.admin_url) as conn:
        rows = conn.execute(
            "SELECT action, result, event_category FROM tenant_audit_log "
            "WHERE tenant_id = %s AND actor_id = %s",
            [tenant_id, f"m-{unique}"],
        ).fetchall()
    assert ("update_tenant", "denied", "authorization") in rows
