"""Break-glass accounts over real HTTP: off by default (a directory outage is 503); when
configured, a break-glass account signs in only while the tenant's directory cannot be reached,
with a loud audit entry; while the directory answers, the same credentials are refused."""

from __future__ import annotations

import json
from pathlib import Path
from uuid import UUID

import httpx
import pytest

from domain.maci import MaciRole
from infra.break_glass import BreakGlassAccounts, hash_password
from tests.e2e.test_ldap_sign_in_api import Directory, _audit_rows, _error
from tests.peers.http import HASH, Api, free_port
from tests.peers.slapd import Slapd

pytestmark = [pytest.mark.e2e, pytest.mark.postgres, pytest.mark.ldap]


def _accounts(tmp_path: Path, slug: str) -> BreakGlassAccounts:
    path = tmp_path / "break-glass.json"
    account = {
        "tenant_slug": slug,
        "username": "breakglass-admin",
        "password_scrypt": hash_password("correct horse battery staple"),
        "maci_roles": ["EXECUTIVE"],
    }
    path.write_text(json.dumps({"accounts": [account]}))
    return BreakGlassAccounts.from_file(path)


def _login(api: Api, slug: str, username: str, password: str) -> httpx.Response:
    with httpx.Client(base_url=api.url, timeout=30) as client:
        return client.post(
            "/v1/auth/ldap/login",
            json={"tenant_slug": slug, "username": username, "password": password},
        )


def _unreachable_directory(api: Api, platform: httpx.Client, slapd: Slapd, slug: str) -> UUID:
    tenant_id = UUID(api.create_tenant(platform, slug)["tenant_id"])
    with api.client(api.token(MaciRole.EXECUTIVE, tenant_id=tenant_id)) as admin:
        created = admin.post(
            f"/v1/tenants/{tenant_id}/integrations",
            json={
                "integration_type": "ldap",
                "integration_name": "Down",
                "config": {
                    "server_url": f"ldaps://127.0.0.1:{free_port()}",  # nobody listens
                    "base_dn": slapd.base_dn,
                    "bind_dn": slapd.service_dn,
                    "bind_password": slapd.service_password,
                    "ca_cert_pem": slapd.ca_pem,
                    "timeout_seconds": 1,
                },
                "constitutional_hash": HASH,
            },
        )
        assert created.status_code == 201, created.text
    api.wait_projected()
    return tenant_id


def test_break_glass_signs_in_only_while_the_directory_is_down(
    api: Api,
    platform: httpx.Client,
    slapd: Slapd,
    unique: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    slug = f"bg-{unique}"
    tenant_id = _unreachable_directory(api, platform, slapd, slug)
    password = "correct horse battery staple"
    # off by default: the outage is a 503, whatever is typed
    _error(_login(api, slug, "breakglass-admin", password), 503, "DEPENDENCY_UNAVAILABLE")
    monkeypatch.setattr(api.services.sign_in, "break_glass", _accounts(tmp_path, slug))
    signed_in = _login(api, slug, "breakglass-admin", password)
    assert signed_in.status_code == 200, signed_in.text
    assert signed_in.json()["maci_roles"] == ["EXECUTIVE"]
    claims = api.services.verifier.verify(signed_in.json()["access_token"])
    assert claims.auth_method == "break_glass"
    assert claims.tenant_id == tenant_id
    # a wrong break-glass password is not a way in: the outage answer stays
    _error(_login(api, slug, "breakglass-admin", "guess"), 503, "DEPENDENCY_UNAVAILABLE")
    [entry] = _audit_rows(api, tenant_id, "break_glass_login")
    assert entry["result"] == "success"
    assert "BREAK-GLASS" in entry["details"]["warning"]
    assert password not in json.dumps(entry)


def test_break_glass_is_refused_while_the_directory_answers(
    api: Api,
    platform: httpx.Client,
    slapd: Slapd,
    unique: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    directory = Directory(api, platform, slapd, f"bgup-{unique}")
    try:
        monkeypatch.setattr(
            api.services.sign_in, "break_glass", _accounts(tmp_path, directory.slug)
        )
        refused = directory.login("breakglass-admin", "correct horse battery staple")
        _error(refused, 401, "INVALID_CREDENTIALS")
        assert _audit_rows(api, directory.id, "break_glass_login") == []
    finally:
        directory.admin.close()
