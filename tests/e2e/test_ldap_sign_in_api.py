"""Sign-in through the directory over real HTTP, against the real database and the real slapd:
the end-to-end flow (connect, service bind, user search, user bind, groups, MACI roles, the
token with its constitutional hash, the audit entry), role mappings managed over HTTP, every
failure the same 401, throttling, refresh rotation and reuse detection, logout effective for the
access token, and the role cache's invalidation."""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import httpx
import psycopg
import pytest

from api.role_cache import RoleMappingListener
from domain.maci import MaciRole
from infra.tokens import TokenVerifier
from tests.peers.http import HASH, Api, wait_for
from tests.peers.slapd import BASE_DN, Slapd

pytestmark = [pytest.mark.e2e, pytest.mark.postgres, pytest.mark.ldap]
H = {"X-Constitutional-Hash": HASH}
EXECUTIVES = f"cn=executives,ou=groups,{BASE_DN}"
AUDITORS = f"CN=Auditors,OU=Groups,{BASE_DN.upper()}"  # compared normalised


def _error(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["code"] == code
    assert error["constitutional_hash"] == HASH
    return dict(error)


class Directory:
    """A tenant with an LDAP integration on the fixture's slapd and two role mappings."""

    def __init__(self, api: Api, platform: httpx.Client, slapd: Slapd, slug: str) -> None:
        created = api.create_tenant(platform, slug)
        self.id = UUID(created["tenant_id"])
        self.slug = slug
        self.api = api
        self.admin = api.client(api.token(MaciRole.EXECUTIVE, tenant_id=self.id))
        integration = self.admin.post(
            f"/v1/tenants/{self.id}/integrations",
            json={
                "integration_type": "ldap",
                "integration_name": "Corporate LDAP",
                "config": {
                    "server_url": slapd.ldaps_url,
                    "base_dn": slapd.base_dn,
                    "bind_dn": slapd.service_dn,
                    "bind_password": slapd.service_password,
                    "ca_cert_pem": slapd.ca_pem,
                    "group_search_filter": "(|(member={user_dn})(memberUid={username}))",
                    "timeout_seconds": 2,
                    "connection_pool_size": 5,
                },
                "constitutional_hash": HASH,
            },
        )
        assert integration.status_code == 201, integration.text
        self.integration_id = integration.json()["integration_id"]
        self.executive = self.map(EXECUTIVES, "EXECUTIVE", 10)
        self.auditor = self.map(AUDITORS, "AUDITOR", 20)
        api.wait_projected()

    @property
    def mappings(self) -> str:
        return f"/v1/tenants/{self.id}/role-mappings"

    def map(self, group: str, role: str, priority: int) -> dict[str, Any]:
        response = self.admin.post(
            self.mappings,
            json={
                "integration_id": self.integration_id,
                "source_type": "ldap_group",
                "source_value": group,
                "maci_role": role,
                "priority": priority,
                "constitutional_hash": HASH,
            },
        )
        assert response.status_code == 201, response.text
        body: dict[str, Any] = response.json()
        return body

    def login(self, username: str, password: str, **extra: Any) -> httpx.Response:
        with httpx.Client(base_url=self.api.url, timeout=30) as client:
            return client.post(
                "/v1/auth/ldap/login",
                json={"tenant_slug": self.slug, "username": username, "password": password},
                **extra,
            )


@pytest.fixture
def directory(api: Api, platform: httpx.Client, slapd: Slapd, unique: str) -> Iterator[Directory]:
    made = Directory(api, platform, slapd, f"ldap-{unique}")
    yield made
    made.admin.close()


def _audit_rows(api: Api, tenant_id: UUID, action: str) -> list[dict[str, Any]]:
    api.wait_projected()
    with psycopg.connect(api.system.app_conninfo) as conn, conn.transaction():
        conn.execute("SELECT set_config('app.current_tenant_id', %s, true)", [str(tenant_id)])
        rows = conn.execute(
            "SELECT event_category, action, result, details FROM tenant_audit_log "
            "WHERE action = %s ORDER BY timestamp",
            [action],
        ).fetchall()
    return [{"category": r[0], "action": r[1], "result": r[2], "details": r[3]} for r in rows]


def test_the_end_to_end_flow(api: Api, directory: Directory) -> None:
    # 1-5: connect, service bind, find alice, bind as alice, read her groups;
    signed_in = directory.login("alice", "alice-password")
    assert signed_in.status_code == 200, signed_in.text
    body = signed_in.json()
    # 6: executives → EXECUTIVE (priority 10), auditors → AUDITOR (priority 20 wins)
    assert body["maci_roles"] == ["AUDITOR", "EXECUTIVE"]
    assert body["maci_role"] == "AUDITOR"
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 900
    assert body["constitutional_hash"] == HASH
    assert signed_in.headers["x-constitutional-hash"] == HASH
    # 7-8: the service's RS256 token with the roles and the constitutional hash
    verifier: TokenVerifier = api.services.verifier
    claims = verifier.verify(body["access_token"])
    assert claims.sub == "alice"
    assert claims.tenant_id == directory.id
    assert claims.roles == (MaciRole.AUDITOR, MaciRole.EXECUTIVE)
    assert claims.auth_method == "ldap"
    assert claims.sid
    with api.client(body["access_token"]) as alice:
        me = alice.get("/v1/auth/me")
        assert me.status_code == 200, me.text
        assert me.json()["maci_roles"] == ["AUDITOR", "EXECUTIVE"]
        assert me.json()["sid"] == claims.sid
        # the mapped role works: EXECUTIVE may list role mappings of her tenant
        assert alice.get(directory.mappings).json()["total"] == 2
    # 9: the attempt is audited, without the password
    [entry] = _audit_rows(api, directory.id, "ldap_login")
    assert entry["category"] == "authentication"
    assert entry["result"] == "success"
    assert entry["details"]["username"] == "alice"
    assert "alice-password" not in str(entry)


def test_an_email_signs_in_and_an_unmapped_user_gets_the_default_role(
    directory: Directory,
) -> None:
    bob = directory.login("bob@acme.test", "bob-password")  # bob is in auditors only
    assert bob.status_code == 200, bob.text
    assert bob.json()["maci_roles"] == ["AUDITOR"]
    admin = directory.login("admin", "admin-password")  # in no mapped group
    assert admin.status_code == 200, admin.text
    assert admin.json()["maci_roles"] == ["MONITOR"]


@pytest.mark.parametrize(
    ("username", "password"),
    [
        ("alice", "wrong-password"),
        ("nobody", "alice-password"),
        ("carol", "carol-password"),  # disabled (locked)
        ("*", "alice-password"),
        (")(uid=*", "alice-password"),
        ("\\00", "alice-password"),  # the escape itself, typed (NUL in JSON is refused: 422)
        ("al*", "alice-password"),
        ("admin)(|(uid=*", "admin-password"),
        ("alice", ""),
    ],
)
def test_every_failure_is_the_same_401(directory: Directory, username: str, password: str) -> None:
    error = _error(directory.login(username, password), 401, "INVALID_CREDENTIALS")
    assert error["message"] == "the user name or password is not valid"
    assert error["details"] == {}


def test_an_unknown_tenant_is_the_same_401(api: Api) -> None:
    with httpx.Client(base_url=api.url, timeout=30) as client:
        response = client.post(
            "/v1/auth/ldap/login",
            json={"tenant_slug": "no-such-tenant", "username": "alice", "password": "x"},
        )
    error = _error(response, 401, "INVALID_CREDENTIALS")
    assert error["message"] == "the user name or password is not valid"


def test_guessing_is_throttled_per_account(api: Api, directory: Directory) -> None:
    for _ in range(5):
        _error(directory.login("bob", "guess"), 401, "INVALID_CREDENTIALS")
    limited = directory.login("bob", "bob-password")  # even the right password now
    _error(limited, 429, "RATE_LIMITED")
    assert int(limited.headers["retry-after"]) > 0
    assert directory.login("alice", "alice-password").status_code == 200  # others unaffected
    denied = [r for r in _audit_rows(api, directory.id, "ldap_login") if r["result"] == "denied"]
    assert denied[0]["details"]["outcome"] == "rate_limited"


def test_refresh_rotates_and_reuse_ends_the_session(api: Api, directory: Directory) -> None:
    first = directory.login("alice", "alice-password").json()
    with httpx.Client(base_url=api.url, timeout=30) as client:
        refreshed = client.post(
            "/v1/auth/token/refresh", json={"refresh_token": first["refresh_token"]}
        )
        assert refreshed.status_code == 200, refreshed.text
        second = refreshed.json()
        assert second["refresh_token"] != first["refresh_token"]
        assert second["maci_roles"] == ["AUDITOR", "EXECUTIVE"]
        reused = client.post(
            "/v1/auth/token/refresh", json={"refresh_token": first["refresh_token"]}
        )
        _error(reused, 401, "INVALID_TOKEN")
        # the whole family is gone: the legitimate holder's new token too
        _error(
            client.post("/v1/auth/token/refresh", json={"refresh_token": second["refresh_token"]}),
            401,
            "INVALID_TOKEN",
        )
    [entry] = _audit_rows(api, directory.id, "refresh_token_reused")
    assert entry["result"] == "denied"


def test_logout_ends_the_access_token_and_the_refresh_token(api: Api, directory: Directory) -> None:
    tokens = directory.login("alice", "alice-password").json()
    with api.client(tokens["access_token"]) as alice:
        assert alice.get("/v1/auth/me").status_code == 200
        out = alice.post("/v1/auth/logout")
        assert out.status_code == 200, out.text
        assert out.json()["session_ended"] is True
        refused = alice.get("/v1/auth/me")  # the same process: at once
        assert _error(refused, 401, "INVALID_TOKEN")["details"]["reason"] == "token revoked"
    with httpx.Client(base_url=api.url, timeout=30) as client:
        _error(
            client.post("/v1/auth/token/refresh", json={"refresh_token": tokens["refresh_token"]}),
            401,
            "INVALID_TOKEN",
        )


@pytest.mark.usefixtures("role_cache_listener")
def test_a_changed_mapping_shows_at_the_next_login(api: Api, directory: Directory) -> None:
    assert directory.login("bob", "bob-password").json()["maci_roles"] == ["AUDITOR"]
    changed = directory.admin.patch(
        f"{directory.mappings}/{directory.auditor['mapping_id']}",
        json={"maci_role": "JUDICIAL", "constitutional_hash": HASH},
    )
    assert changed.status_code == 200, changed.text
    assert changed.json()["updated_fields"] == ["maci_role"]
    api.wait_projected()  # the projection's NOTIFY drops the cached mappings
    _wait(lambda: directory.login("bob", "bob-password").json()["maci_roles"] == ["JUDICIAL"])
    deleted = directory.admin.delete(
        f"{directory.mappings}/{directory.auditor['mapping_id']}", headers=H
    )
    assert deleted.status_code == 204, deleted.text
    api.wait_projected()
    _wait(lambda: directory.login("bob", "bob-password").json()["maci_roles"] == ["MONITOR"])


def _wait(check: Any) -> None:
    wait_for(check, timeout=5)


@pytest.fixture
def role_cache_listener(api: Api) -> Iterator[None]:
    """The `role_cache` worker of a served process (the session's server runs no workers)."""
    assert api.system.role_cache is not None
    listener = RoleMappingListener(api.system.app_conninfo, api.system.role_cache)
    stop = threading.Event()
    thread = threading.Thread(target=listener.run, args=(stop,), daemon=True)
    thread.start()
    yield
    stop.set()
    thread.join(timeout=5)


def test_role_mapping_routes_validate_and_fence_tenants(
    api: Api, platform: httpx.Client, directory: Directory, unique: str
) -> None:
    bad = directory.admin.post(
        directory.mappings,
        json={
            "integration_id": directory.integration_id,
            "source_type": "ldap_grp",
            "source_value": "",
            "maci_role": "KING",
            "priority": -1,
            "constitutional_hash": HASH,
        },
    )
    fields = {f["field"] for f in _error(bad, 422, "VALIDATION_ERROR")["details"]["fields"]}
    assert fields == {"source_type", "source_value", "maci_role", "priority"}
    again = directory.admin.post(
        directory.mappings,
        json={
            "integration_id": directory.integration_id,
            "source_type": "ldap_group",
            "source_value": EXECUTIVES.upper(),  # the same group, spelled otherwise
            "maci_role": "MONITOR",
            "constitutional_hash": HASH,
        },
    )
    _error(again, 409, "ROLE_MAPPING_EXISTS")
    other = api.create_tenant(platform, f"other-{unique}")
    with api.client(api.token(MaciRole.EXECUTIVE, tenant_id=UUID(other["tenant_id"]))) as admin:
        foreign = admin.post(
            f"/v1/tenants/{other['tenant_id']}/role-mappings",
            json={
                "integration_id": directory.integration_id,  # another tenant's integration
                "source_type": "ldap_group",
                "source_value": EXECUTIVES,
                "maci_role": "EXECUTIVE",
                "constitutional_hash": HASH,
            },
        )
        _error(foreign, 404, "NOT_FOUND")
        _error(
            admin.get(f"{directory.mappings}/{directory.executive['mapping_id']}"), 404, "NOT_FOUND"
        )
    with api.client(api.token(MaciRole.MONITOR, tenant_id=directory.id)) as monitor:
        assert monitor.get(directory.mappings).status_code == 200
        forbidden = monitor.post(
            directory.mappings,
            json={
                "integration_id": directory.integration_id,
                "source_type": "ldap_group",
                "source_value": "cn=x,dc=y",
                "maci_role": "EXECUTIVE",
                "constitutional_hash": HASH,
            },
        )
        _error(forbidden, 403, "FORBIDDEN")


def test_refresh_reads_the_directory_again(
    api: Api, directory: Directory, slapd: Slapd, unique: str
) -> None:
    user = f"dave{unique.replace('-', '')}"
    dn = f"uid={user},ou=people,{BASE_DN}"
    slapd.change(
        f"dn: {dn}\nchangetype: add\nobjectClass: inetOrgPerson\nuid: {user}\ncn: Dave\n"
        f"sn: Test\nuserPassword: dave-password\n\n"
        f"dn: cn=executives,ou=groups,{BASE_DN}\nchangetype: modify\nadd: member\nmember: {dn}\n"
    )
    tokens = directory.login(user, "dave-password").json()
    assert tokens["maci_roles"] == ["EXECUTIVE"]
    # removed from the mapped group: the next refresh carries the default role only
    slapd.change(
        f"dn: cn=executives,ou=groups,{BASE_DN}\nchangetype: modify\ndelete: member\nmember: {dn}\n"
    )
    with httpx.Client(base_url=api.url, timeout=30) as client:
        refreshed = client.post(
            "/v1/auth/token/refresh", json={"refresh_token": tokens["refresh_token"]}
        )
        assert refreshed.status_code == 200, refreshed.text
        assert refreshed.json()["maci_roles"] == ["MONITOR"]
        claims = api.services.verifier.verify(refreshed.json()["access_token"])
        assert claims.roles == (MaciRole.MONITOR,)
        # removed from the directory: the next refresh ends the session
        slapd.change(f"dn: {dn}\nchangetype: delete\n")
        gone = client.post(
            "/v1/auth/token/refresh", json={"refresh_token": refreshed.json()["refresh_token"]}
        )
        _error(gone, 401, "INVALID_TOKEN")
    [entry] = _audit_rows(api, directory.id, "refresh_access_removed")
    assert entry["result"] == "denied"


def test_logout_with_a_token_that_has_no_session_revokes_nothing(api: Api) -> None:
    with api.client(api.token(MaciRole.AUDITOR)) as operator:
        out = operator.post("/v1/auth/logout")
        assert out.status_code == 200, out.text
        assert out.json()["session_ended"] is False
        assert operator.get("/v1/auth/me").status_code == 200  # still valid


# --- the tenant's sign-in settings ---------------------------------------------------------------


def _claims(token: str) -> dict[str, Any]:
    payload = token.split(".")[1]
    decoded: dict[str, Any] = json.loads(
        base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
    )
    return decoded


def _settings(api: Api, directory: Directory, **changes: Any) -> httpx.Response:
    response = directory.admin.patch(
        f"/v1/tenants/{directory.id}", json={**changes, "constitutional_hash": HASH}
    )
    api.wait_projected()
    return response


def test_the_default_role_and_lifetimes_are_the_tenants_own(api: Api, directory: Directory) -> None:
    shown = directory.admin.get(f"/v1/tenants/{directory.id}").json()
    assert (
        shown["default_role"],
        shown["access_token_ttl_seconds"],
        shown["refresh_token_ttl_seconds"],
    ) == ("MONITOR", 900, 28800)
    admin = directory.login("admin", "admin-password").json()  # in no mapped group
    assert admin["maci_roles"] == ["MONITOR"]
    claims = _claims(admin["access_token"])
    assert claims["exp"] - claims["iat"] == 900
    changed = _settings(
        api,
        directory,
        default_role="AUDITOR",
        access_token_ttl_seconds=120,
        refresh_token_ttl_seconds=600,
    )
    assert changed.status_code == 200, changed.text
    assert changed.json()["updated_fields"] == [
        "access_token_ttl_seconds",
        "default_role",
        "refresh_token_ttl_seconds",
    ]
    shown = directory.admin.get(f"/v1/tenants/{directory.id}").json()
    assert (
        shown["default_role"],
        shown["access_token_ttl_seconds"],
        shown["refresh_token_ttl_seconds"],
    ) == ("AUDITOR", 120, 600)
    admin = directory.login("admin", "admin-password").json()
    assert admin["maci_roles"] == ["AUDITOR"]
    assert admin["expires_in"] == 120
    claims = _claims(admin["access_token"])
    assert claims["exp"] - claims["iat"] == 120
    with psycopg.connect(api.system.app_conninfo) as conn, conn.transaction():
        conn.execute("SELECT set_config('app.current_tenant_id', %s, true)", [str(directory.id)])
        lifetimes = conn.execute(
            "SELECT extract(epoch FROM s.expires_at - s.created_at), "
            "extract(epoch FROM t.expires_at - t.issued_at) FROM auth_sessions s "
            "JOIN auth_refresh_tokens t USING (sid) WHERE s.sid = %s",
            [claims["sid"]],
        ).fetchone()
    assert lifetimes == (600, 600)
    refreshed = _refresh(api, admin["refresh_token"])
    assert refreshed.status_code == 200, refreshed.text
    renewed = _claims(refreshed.json()["access_token"])
    assert renewed["exp"] - renewed["iat"] == 120


def test_a_refresh_token_ends_with_the_tenants_refresh_lifetime(
    api: Api, directory: Directory, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert _settings(api, directory, refresh_token_ttl_seconds=900).status_code == 200
    tokens = directory.login("alice", "alice-password").json()
    store = api.services.sign_in._ports.sessions  # type: ignore[attr-defined]
    opened = datetime.now(UTC)
    monkeypatch.setattr(store, "_now", lambda: opened + timedelta(seconds=890))
    almost = _refresh(api, tokens["refresh_token"])
    assert almost.status_code == 200, almost.text
    monkeypatch.setattr(store, "_now", lambda: opened + timedelta(seconds=901))
    _error(_refresh(api, almost.json()["refresh_token"]), 401, "INVALID_TOKEN")


def test_default_role_none_refuses_an_unmapped_user_with_403(
    api: Api, directory: Directory
) -> None:
    assert _settings(api, directory, default_role="none").status_code == 200
    error = _error(directory.login("admin", "admin-password"), 403, "FORBIDDEN")
    assert error["message"] == "no role is mapped for this user"
    # a wrong password or an unknown user still learn nothing more than before
    _error(directory.login("admin", "wrong-password"), 401, "INVALID_CREDENTIALS")
    _error(directory.login("nobody", "admin-password"), 401, "INVALID_CREDENTIALS")
    assert directory.login("alice", "alice-password").status_code == 200  # mapped: still in
    refused = [r for r in _audit_rows(api, directory.id, "ldap_login") if r["result"] == "denied"]
    assert [(r["category"], r["details"]["outcome"]) for r in refused] == [
        ("authentication", "no_role")
    ]
    assert refused[0]["details"]["username"] == "admin"


def test_default_role_none_ends_an_unmapped_session_at_refresh(
    api: Api, directory: Directory
) -> None:
    tokens = directory.login("admin", "admin-password").json()
    assert tokens["maci_roles"] == ["MONITOR"]
    assert _settings(api, directory, default_role="none").status_code == 200
    _error(_refresh(api, tokens["refresh_token"]), 401, "INVALID_TOKEN")
    [entry] = _audit_rows(api, directory.id, "refresh_access_removed")
    assert entry["result"] == "denied"
    with api.client(tokens["access_token"]) as admin:  # the session is over: its token too
        assert _error(admin.get("/v1/auth/me"), 401, "INVALID_TOKEN")


def test_bad_sign_in_settings_are_refused_all_at_once(api: Api, directory: Directory) -> None:
    bad = _settings(
        api,
        directory,
        tenant_name="x",
        default_role="KING",
        access_token_ttl_seconds=30,
        refresh_token_ttl_seconds=31 * 86400,
    )
    fields = {f["field"] for f in _error(bad, 422, "VALIDATION_ERROR")["details"]["fields"]}
    assert fields == {
        "tenant_name",
        "default_role",
        "access_token_ttl_seconds",
        "refresh_token_ttl_seconds",
    }
    crossed = _settings(
        api, directory, access_token_ttl_seconds=3600, refresh_token_ttl_seconds=600
    )
    [problem] = _error(crossed, 422, "VALIDATION_ERROR")["details"]["fields"]
    assert problem["field"] == "refresh_token_ttl_seconds"
    typed = _settings(api, directory, default_role=7, access_token_ttl_seconds="900")
    fields = {f["field"] for f in _error(typed, 422, "VALIDATION_ERROR")["details"]["fields"]}
    assert fields == {"default_role", "access_token_ttl_seconds"}
    shown = directory.admin.get(f"/v1/tenants/{directory.id}").json()
    assert shown["default_role"] == "MONITOR"
    with api.client(api.token(MaciRole.AUDITOR, tenant_id=directory.id)) as auditor:
        refused = auditor.patch(
            f"/v1/tenants/{directory.id}",
            json={"default_role": "none", "constitutional_hash": HASH},
        )
        _error(refused, 403, "FORBIDDEN")


def _refresh(api: Api, refresh_token: str) -> httpx.Response:
    with httpx.Client(base_url=api.url, timeout=30) as client:
        return client.post("/v1/auth/token/refresh", json={"refresh_token": refresh_token})
