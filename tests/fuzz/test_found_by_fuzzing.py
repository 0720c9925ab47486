"""Regression cases of what the fuzzer found, one per finding, each failing before its fix."""

from __future__ import annotations

import httpx
import pytest

from domain.tenancy import SYSTEM_TENANT_ID
from tests.fuzz.world import restore_the_platform
from tests.peers.http import HASH, Api

pytestmark = [pytest.mark.e2e, pytest.mark.postgres, pytest.mark.security]


@pytest.mark.parametrize("status", ["suspended", "deactivated"])
def test_the_platform_cannot_suspend_its_own_tenant(
    api: Api, platform: httpx.Client, status: str
) -> None:
    """Found by the fuzzer (a generated all-zero UUID): PATCH status on the system tenant locked
    every platform principal out (their tokens became INVALID_TOKEN), where DELETE is refused."""
    try:
        response = platform.patch(
            f"/v1/tenants/{SYSTEM_TENANT_ID}",
            json={"status": status},
            headers={"X-Constitutional-Hash": HASH},
        )
        assert response.status_code == 403, response.text
        assert response.json()["error"]["code"] == "FORBIDDEN"
        assert platform.get("/v1/tenants", params={"limit": 1}).status_code == 200
    finally:
        restore_the_platform(api, {})  # a broken run must not lock out the suites after it


@pytest.mark.parametrize("offset", [2**31, 10**20, 2**63])
def test_a_list_offset_beyond_the_database_range_is_422(
    platform: httpx.Client, offset: int
) -> None:
    """Found by the fuzzer: `offset=10**20` reached PostgreSQL (bigint out of range): 500."""
    response = platform.get("/v1/tenants", params={"offset": offset})
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["code"] == "VALIDATION_ERROR"
    assert error["details"]["fields"][0]["field"] == "offset"
    assert platform.get("/v1/tenants", params={"offset": 2**31 - 1}).status_code == 200
