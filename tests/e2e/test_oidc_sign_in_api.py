"""Sign-in through a real OpenID provider (oidc-provider, tests/peers/oidc_provider.py) over
real HTTP, the browser's way: the service's login route redirects to the provider, the user
fills the provider's login form, the provider redirects back to the callback, which answers
the service's own tokens. Claims, roles from the groups claim, the (issuer, subject) identity,
refresh (the provider's refresh token exchanged), logout (the provider's token revoked there),
and the plain OAuth 2.0 type with scopes mapped to roles."""

from __future__ import annotations

from collections.abc import Iterator
from uuid import UUID

import anyio
import httpx
import psycopg
import pytest

from commands.oidc_sign_in import browser_cookie
from domain.maci import MaciRole
from tests.e2e.oidc_support import (
    GOVERNANCE,
    Browser,
    Forge,
    OidcTenant,
    audit_rows,
    login_url,
    signed,
    token_swapping_proxy,
)
from tests.peers.http import HASH, Api
from tests.peers.oidc_provider import OidcProvider

pytestmark = [pytest.mark.e2e, pytest.mark.postgres, pytest.mark.oidc]


@pytest.fixture(scope="module")
def tenant(api: Api, oidc_provider: OidcProvider) -> Iterator[OidcTenant]:
    with api.client(api.token(MaciRole.EXECUTIVE)) as platform:
        yield OidcTenant(api, platform, oidc_provider, "oidc-acme")


@pytest.fixture
def browser() -> Iterator[Browser]:
    b = Browser()
    yield b
    b.close()


def _me(api: Api, access_token: str) -> dict[str, object]:
    with api.client(access_token) as client:
        me = client.get("/v1/auth/me")
    assert me.status_code == 200, me.text
    return dict(me.json())


def test_login_redirects_to_the_provider_with_pkce_state_and_nonce(
    api: Api, tenant: OidcTenant, oidc_provider: OidcProvider
) -> None:
    with httpx.Client() as client:
        response = client.get(login_url(api, tenant.integration_id))
    assert response.status_code == 303
    target = httpx.URL(response.headers["location"])
    assert str(target).startswith(f"{oidc_provider.issuer}/auth?")
    query = dict(target.params)
    assert query["response_type"] == "code"
    assert query["client_id"] == "acgs-web"
    assert query["code_challenge_method"] == "S256"
    assert len(query["code_challenge"]) == 43
    assert len(query["nonce"]) >= 32
    assert query["state"].startswith("_" + tenant.id.hex)
    assert query["redirect_uri"] == f"{api.url}/v1/auth/oidc/callback"
    assert set(query["scope"].split()) == {"openid", "profile", "email", "groups"}
    assert response.headers["x-constitutional-hash"] == HASH
    # the browser that started the sign-in keeps its key: only it can finish the sign-in
    cookie = response.headers["set-cookie"]
    assert cookie.startswith(browser_cookie(query["state"]) + "=")
    assert "HttpOnly" in cookie
    assert "SameSite=lax" in cookie or "SameSite=Lax" in cookie
    assert "Path=/v1/auth/oidc/callback" in cookie


def test_sign_in_through_the_provider(
    api: Api, tenant: OidcTenant, browser: Browser, oidc_provider: OidcProvider
) -> None:
    signed_in = browser.sign_in(api, tenant.integration_id, "alice", "alice-oidc-pw")
    assert signed_in.status_code == 200, signed_in.text
    body = signed_in.json()
    # groups claim (read from userinfo): auditors (priority 20) before executives (10)
    assert body["maci_roles"] == ["AUDITOR", "EXECUTIVE"]
    assert body["maci_role"] == "AUDITOR"
    assert body["constitutional_hash"] == HASH
    me = _me(api, body["access_token"])
    assert me["sub"] == f"{oidc_provider.issuer}#u-1001"  # (issuer, subject), not the email
    assert me["auth_method"] == "oidc"
    assert me["tenant_id"] == str(tenant.id)
    [entry] = [
        r
        for r in audit_rows(api, tenant.id, "oidc_login")
        if r["result"] == "success" and r["details"]["subject"].endswith("#u-1001")
    ][-1:]
    assert entry["category"] == "authentication"
    assert entry["details"]["username"] == "alice"
    assert entry["details"]["issuer"] == oidc_provider.issuer
    assert entry["details"]["maci_roles"] == ["AUDITOR", "EXECUTIVE"]
    assert body["access_token"] not in str(entry)
    assert body["refresh_token"] not in str(entry)


def test_a_user_with_the_same_email_is_another_user(
    api: Api, tenant: OidcTenant, browser: Browser, oidc_provider: OidcProvider
) -> None:
    signed_in = browser.sign_in(api, tenant.integration_id, "mallory", "mallory-oidc-pw")
    assert signed_in.status_code == 200, signed_in.text
    assert signed_in.json()["maci_roles"] == ["MONITOR"]  # no mapped group: the default role
    assert _me(api, signed_in.json()["access_token"])["sub"] == f"{oidc_provider.issuer}#u-6666"


def test_a_wrong_password_never_reaches_the_service(
    api: Api, tenant: OidcTenant, browser: Browser
) -> None:
    with pytest.raises(AssertionError, match="401"):
        browser.authorize(login_url(api, tenant.integration_id), "alice", "wrong")


def _provider_token(api: Api, tenant: OidcTenant, sid: str) -> str:
    stored = api.services.oidc._upstream  # the sealed store, read back as the service does
    found = anyio.run(stored.load, tenant.id, sid)
    assert found is not None
    return found[1]


def test_refresh_exchanges_the_providers_refresh_token(
    api: Api, tenant: OidcTenant, browser: Browser
) -> None:
    signed_in = browser.sign_in(api, tenant.integration_id, "bob", "bob-oidc-pw").json()
    assert signed_in["maci_roles"] == ["AUDITOR"]
    sid = str(_me(api, signed_in["access_token"])["sid"])
    before = _provider_token(api, tenant, sid)
    with httpx.Client(base_url=api.url) as client:
        refreshed = client.post(
            "/v1/auth/token/refresh", json={"refresh_token": signed_in["refresh_token"]}
        )
    assert refreshed.status_code == 200, refreshed.text
    assert refreshed.json()["maci_roles"] == ["AUDITOR"]  # groups read again from the provider
    after = _provider_token(api, tenant, sid)
    assert after != before  # the provider rotated its token
    with psycopg.connect(api.system.app_conninfo) as conn, conn.transaction():
        conn.execute("SELECT set_config('app.current_tenant_id', %s, true)", [str(tenant.id)])
        [(stored,)] = conn.execute(
            "SELECT refresh_token FROM auth_upstream_tokens WHERE sid = %s", [sid]
        ).fetchall()
    assert stored.startswith("acgs:v1:")  # sealed at rest
    assert after not in stored


def test_logout_revokes_the_providers_token(
    api: Api, tenant: OidcTenant, browser: Browser, oidc_provider: OidcProvider
) -> None:
    signed_in = browser.sign_in(api, tenant.integration_id, "alice", "alice-oidc-pw").json()
    sid = str(_me(api, signed_in["access_token"])["sid"])
    provider_token = _provider_token(api, tenant, sid)
    with api.client(signed_in["access_token"]) as client:
        out = client.post("/v1/auth/logout", headers={"X-Constitutional-Hash": HASH})
    assert out.status_code == 200, out.text
    assert out.json()["session_ended"] is True
    # the provider no longer honours its refresh token
    token_endpoint = httpx.get(oidc_provider.discovery_url).json()["token_endpoint"]
    answer = httpx.post(
        token_endpoint,
        data={"grant_type": "refresh_token", "refresh_token": provider_token},
        auth=(oidc_provider.web.client_id, oidc_provider.web.client_secret or ""),
    )
    assert answer.status_code == 400
    assert answer.json()["error"] == "invalid_grant"
    [logout] = [r for r in audit_rows(api, tenant.id, "logout") if r["details"]["sid"] == sid]
    assert logout["details"]["provider_revoked"] is True
    with httpx.Client(base_url=api.url) as client:
        again = client.post(
            "/v1/auth/token/refresh", json={"refresh_token": signed_in["refresh_token"]}
        )
    assert again.status_code == 401


def test_the_public_client_signs_in_with_pkce_alone(
    api: Api, platform: httpx.Client, oidc_provider: OidcProvider, browser: Browser
) -> None:
    spa = OidcTenant(
        api, platform, oidc_provider, "oidc-spa",
        config={"client_id": oidc_provider.spa.client_id, "client_secret": None},
    )  # fmt: skip
    signed_in = browser.sign_in(api, spa.integration_id, "alice", "alice-oidc-pw")
    assert signed_in.status_code == 200, signed_in.text
    assert signed_in.json()["maci_roles"] == ["AUDITOR", "EXECUTIVE"]


def test_oauth_scopes_granted_by_the_provider_become_roles(
    api: Api, platform: httpx.Client, oidc_provider: OidcProvider
) -> None:
    oauth = OidcTenant(
        api, platform, oidc_provider, "oauth-acme", kind="oauth",
        config={"scopes": ["openid", GOVERNANCE]},
        mappings=((GOVERNANCE, "EXECUTIVE", 10),),
    )  # fmt: skip
    alice, bob = Browser(), Browser()
    try:
        granted = alice.sign_in(api, oauth.integration_id, "alice", "alice-oidc-pw")
        refused_scope = bob.sign_in(api, oauth.integration_id, "bob", "bob-oidc-pw")
    finally:
        alice.close()
        bob.close()
    assert granted.status_code == 200, granted.text
    assert granted.json()["maci_roles"] == ["EXECUTIVE"]  # alice may have governance:admin
    assert _me(api, granted.json()["access_token"])["auth_method"] == "oauth"
    assert refused_scope.status_code == 200, refused_scope.text
    assert refused_scope.json()["maci_roles"] == ["MONITOR"]  # bob was not granted it
    [entry] = [
        r for r in audit_rows(api, oauth.id, "oauth_login")
        if r["result"] == "success" and r["details"]["subject"].endswith("#u-1001")
    ]  # fmt: skip
    assert GOVERNANCE in entry["details"]["scopes"]


def test_an_unknown_integration_is_404(api: Api) -> None:
    with httpx.Client() as client:
        response = client.get(login_url(api, str(UUID(int=7))))
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "NOT_FOUND"


def test_a_token_the_provider_revoked_ends_the_session_at_refresh(
    api: Api, tenant: OidcTenant, browser: Browser, oidc_provider: OidcProvider
) -> None:
    signed_in = browser.sign_in(api, tenant.integration_id, "bob", "bob-oidc-pw").json()
    sid = str(_me(api, signed_in["access_token"])["sid"])
    revocation = httpx.get(oidc_provider.discovery_url).json()["revocation_endpoint"]
    revoked = httpx.post(
        revocation,
        data={"token": _provider_token(api, tenant, sid), "token_type_hint": "refresh_token"},
        auth=(oidc_provider.web.client_id, oidc_provider.web.client_secret or ""),
    )
    assert revoked.status_code == 200  # the user was signed out at the provider
    with httpx.Client(base_url=api.url) as client:
        refreshed = client.post(
            "/v1/auth/token/refresh", json={"refresh_token": signed_in["refresh_token"]}
        )
    assert refreshed.status_code == 401, refreshed.text
    [removed] = [
        r for r in audit_rows(api, tenant.id, "refresh_access_removed")
        if r["details"]["sid"] == sid
    ]  # fmt: skip
    assert removed["result"] == "denied"
    assert removed["details"]["reason"] == "refresh_failed"
    with api.client(signed_in["access_token"]) as client:  # the session is over everywhere
        assert client.get("/v1/auth/me").status_code == 401


def test_an_unreachable_provider_is_503_and_audited(
    api: Api, platform: httpx.Client, oidc_provider: OidcProvider, browser: Browser
) -> None:
    forge: list[Forge] = [lambda claims: signed(oidc_provider.key, claims)]
    with token_swapping_proxy(oidc_provider, forge) as discovery:
        proxied = OidcTenant(
            api, platform, oidc_provider, "oidc-down", config={"discovery_url": discovery}
        )
        callback = browser.authorize(
            login_url(api, proxied.integration_id), "alice", "alice-oidc-pw"
        )
    # the token endpoint (the proxy) is gone by the time the browser comes back
    response = browser.client.get(callback)
    assert response.status_code == 503, response.text
    assert response.json()["error"]["code"] == "DEPENDENCY_UNAVAILABLE"
    [denial] = [r for r in audit_rows(api, proxied.id, "oidc_login") if r["result"] == "denied"]
    assert denial["details"]["outcome"] == "provider_unavailable"


def test_a_configured_redirect_uri_is_the_one_sent(
    api: Api, platform: httpx.Client, oidc_provider: OidcProvider
) -> None:
    behind_proxy = "https://acgs.acme.example/v1/auth/oidc/callback"
    proxied = OidcTenant(
        api, platform, oidc_provider, "oidc-proxied", config={"redirect_uri": behind_proxy}
    )
    with httpx.Client() as client:
        response = client.get(login_url(api, proxied.integration_id))
    assert response.status_code == 303
    assert dict(httpx.URL(response.headers["location"]).params)["redirect_uri"] == behind_proxy
