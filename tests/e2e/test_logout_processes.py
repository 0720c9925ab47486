"""Two `acgs serve` processes on one database: a session signed in through one, ended through
the other, and its access token refused by the first within a second."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from api.bootstrap import build
from api.settings import Settings
from api.tokens import issue_as_operator
from domain.maci import MaciRole
from domain.tenancy import SYSTEM_TENANT_ID
from tests.e2e.test_policy_cache_processes import SharedServe
from tests.peers.http import HASH, wait_for
from tests.peers.slapd import BASE_DN, Slapd

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.processes,
    pytest.mark.postgres,
    pytest.mark.ldap,
    pytest.mark.slow,
]


@pytest.fixture
def two_servers(pg_admin_url: str, tmp_path: Path) -> Iterator[tuple[str, str, str]]:
    settings = Settings.from_env(
        {"ACGS_DATABASE_URL": pg_admin_url, "ACGS_DATA_DIR": str(tmp_path)}
    )
    system = build(settings)
    try:
        token = issue_as_operator(
            system,
            "pytest",
            tenant_id=SYSTEM_TENANT_ID,
            roles=(MaciRole.EXECUTIVE,),
            sub="logout-test",
            ttl_seconds=900,
        ).token
    finally:
        system.close()
    processes = []
    try:
        for _ in range(2):
            process = SharedServe(tmp_path)
            process.database_url = pg_admin_url
            processes.append(process.start())
        for process in processes:
            process.wait_ready()
        yield processes[0].url, processes[1].url, token
    finally:
        for process in processes:
            process.stop()


def _post(client: httpx.Client, path: str, body: dict[str, Any]) -> dict[str, Any]:
    response = client.post(path, json={**body, "constitutional_hash": HASH})
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


def test_a_logout_through_one_process_holds_in_the_other_within_a_second(
    two_servers: tuple[str, str, str], slapd: Slapd, unique: str
) -> None:
    url_a, url_b, platform = two_servers
    slug = f"two-{unique}"
    with (
        httpx.Client(base_url=url_a, timeout=30) as a,
        httpx.Client(base_url=url_b, timeout=30) as b,
    ):
        a.headers["Authorization"] = f"Bearer {platform}"
        tenant = _post(
            a,
            "/v1/tenants",
            {
                "tenant_name": f"Two {unique}",
                "tenant_slug": slug,
                "admin_email": "a@two.example.com",
            },
        )
        tenant_id = tenant["tenant_id"]
        integration = _post(
            a,
            f"/v1/tenants/{tenant_id}/integrations",
            {
                "integration_type": "ldap",
                "integration_name": "Directory",
                "config": {
                    "server_url": slapd.ldaps_url,
                    "base_dn": slapd.base_dn,
                    "bind_dn": slapd.service_dn,
                    "bind_password": slapd.service_password,
                    "ca_cert_pem": slapd.ca_pem,
                },
            },
        )
        _post(
            a,
            f"/v1/tenants/{tenant_id}/role-mappings",
            {
                "integration_id": integration["integration_id"],
                "source_type": "ldap_group",
                "source_value": f"cn=executives,ou=groups,{BASE_DN}",
                "maci_role": "EXECUTIVE",
            },
        )
        login = {"tenant_slug": slug, "username": "alice", "password": "alice-password"}

        def signed_in_as_executive() -> dict[str, Any] | None:
            response = b.post("/v1/auth/ldap/login", json=login)  # through the other process
            if response.status_code == 200 and response.json()["maci_roles"] == ["EXECUTIVE"]:
                body: dict[str, Any] = response.json()
                return body
            return None

        tokens = wait_for(signed_in_as_executive, timeout=15)  # once B's read models caught up
        bearer = {"Authorization": f"Bearer {tokens['access_token']}"}
        assert a.get("/v1/auth/me", headers=bearer).status_code == 200
        assert b.get("/v1/auth/me", headers=bearer).status_code == 200
        out = b.post("/v1/auth/logout", headers=bearer)
        assert out.status_code == 200, out.text
        ended = time.monotonic()
        while a.get("/v1/auth/me", headers=bearer).status_code == 200:
            assert time.monotonic() - ended < 1.0, "process A still accepts the token after 1 s"
            time.sleep(0.02)
        refused = a.get("/v1/auth/me", headers=bearer)
        assert refused.status_code == 401
        assert refused.json()["error"]["details"]["reason"] == "token revoked"
