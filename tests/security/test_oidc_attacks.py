"""The known attacks on an OpenID Connect relying party, each refused with one
`INVALID_ASSERTION` answer and audited with its reason: a missing or replayed `state`, a
callback URL carried to another browser (login CSRF), an
authorization request without PKCE, a reused code, and forged ID tokens (a nonce mismatch,
`alg: none`, HS256 "signed" with the provider's public key, another issuer, an expired token,
a token for another client by `aud` or `azp`).

The flows go through the real provider. For the forged ID tokens the provider's discovery
document is served by a token-swapping proxy (tests/e2e/oidc_support.py) that forwards the
code exchange to the real provider and replaces the ID token in its answer; the control case
(the real claims re-signed with the provider's own key) signs in, so each refusal is the claim's
doing, not the proxy's."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from uuid import UUID

import httpx
import pytest
from joserfc.jwk import RSAKey

from domain.maci import MaciRole
from domain.tenancy import SYSTEM_TENANT_ID
from tests.e2e.oidc_support import (
    Browser,
    Forge,
    OidcTenant,
    audit_rows,
    hs256_with_public_key,
    login_url,
    now,
    signed,
    token_swapping_proxy,
    unsigned,
)
from tests.peers.http import HASH, Api
from tests.peers.oidc_provider import OidcProvider

pytestmark = [pytest.mark.security, pytest.mark.e2e, pytest.mark.postgres, pytest.mark.oidc]


@pytest.fixture(scope="module")
def tenant(api: Api, oidc_provider: OidcProvider) -> Iterator[OidcTenant]:
    with api.client(api.token(MaciRole.EXECUTIVE)) as platform:
        yield OidcTenant(api, platform, oidc_provider, "oidc-attacks")


@pytest.fixture
def browser() -> Iterator[Browser]:
    b = Browser()
    yield b
    b.close()


def _refused(response: httpx.Response) -> None:
    assert response.status_code == 401, response.text
    error = response.json()["error"]
    assert error["code"] == "INVALID_ASSERTION"
    assert error["message"] == "the identity provider's answer was not accepted"
    assert error["constitutional_hash"] == HASH
    assert "access_token" not in response.text


def _denials(api: Api, tenant_id: UUID) -> list[dict[str, Any]]:
    rows = audit_rows(api, tenant_id, "oidc_login")
    return [r["details"] for r in rows if r["result"] == "denied"]


def test_a_callback_without_state_is_refused(api: Api) -> None:
    before = len(_denials(api, SYSTEM_TENANT_ID))
    with httpx.Client() as client:
        response = client.get(f"{api.url}/v1/auth/oidc/callback", params={"code": "abc"})
    _refused(response)
    [denial] = _denials(api, SYSTEM_TENANT_ID)[before:]
    assert denial["outcome"] == "state_missing"


def test_a_replayed_state_is_refused(api: Api, tenant: OidcTenant, browser: Browser) -> None:
    callback = browser.authorize(login_url(api, tenant.integration_id), "alice", "alice-oidc-pw")
    assert browser.client.get(callback).status_code == 200
    before = len(_denials(api, SYSTEM_TENANT_ID))
    _refused(browser.client.get(callback))
    [denial] = _denials(api, SYSTEM_TENANT_ID)[before:]
    assert denial["outcome"] == "state_unknown_expired_or_used"
    assert denial["claimed_tenant"] == str(tenant.id)


def test_a_callback_carried_to_another_browser_is_refused(
    api: Api, tenant: OidcTenant, browser: Browser
) -> None:
    """Login CSRF: the attacker signs in as themself and sends the victim the callback URL."""
    callback = browser.authorize(login_url(api, tenant.integration_id), "bob", "bob-oidc-pw")
    victim = Browser()
    try:
        _refused(victim.client.get(callback))
    finally:
        victim.close()
    [denial] = _denials(api, tenant.id)[-1:]
    assert denial["outcome"] == "browser_mismatch"
    _refused(browser.client.get(callback))  # the state is spent: not even the attacker's own


def test_an_invented_state_is_refused(api: Api, tenant: OidcTenant) -> None:
    invented = "_" + tenant.id.hex + "0" * 40
    with httpx.Client() as client:
        response = client.get(
            f"{api.url}/v1/auth/oidc/callback", params={"code": "abc", "state": invented}
        )
    _refused(response)


def test_an_authorization_request_without_pkce_is_refused(
    api: Api, tenant: OidcTenant, browser: Browser
) -> None:
    redirect = browser.client.get(login_url(api, tenant.integration_id))
    sent = httpx.URL(redirect.headers["location"])
    stripped = sent.copy_remove_param("code_challenge").copy_remove_param("code_challenge_method")
    callback = browser.authorize(stripped, "alice", "alice-oidc-pw")
    assert dict(callback.params)["error"] == "invalid_request"  # the provider requires PKCE
    _refused(browser.client.get(callback))
    [denial] = _denials(api, tenant.id)[-1:]
    assert denial["outcome"] == "provider_error"
    assert denial["provider_error"] == "invalid_request"


def test_a_reused_code_is_refused(api: Api, tenant: OidcTenant, browser: Browser) -> None:
    first = browser.authorize(login_url(api, tenant.integration_id), "alice", "alice-oidc-pw")
    assert browser.client.get(first).status_code == 200
    # a new sign-in's state with the code the first one already exchanged
    second = browser.authorize(login_url(api, tenant.integration_id), "alice", "alice-oidc-pw")
    replay = second.copy_set_param("code", dict(first.params)["code"])
    _refused(browser.client.get(replay))
    [denial] = _denials(api, tenant.id)[-1:]
    assert denial["outcome"] == "code_exchange_failed"
    assert denial["provider_error"] == "invalid_grant"


# --- forged ID tokens -------------------------------------------------------------------------


def _resigned(provider: OidcProvider, **changes: Any) -> Forge:
    def forge(claims: dict[str, Any]) -> str:
        changed = {**claims, **changes}
        return signed(provider.key, {k: v for k, v in changed.items() if v is not None})

    return forge


FORGERIES: dict[str, tuple[str, Any]] = {
    "nonce_mismatch": ("id_token_nonce_mismatch", lambda p: _resigned(p, nonce="another-nonce")),
    "alg_none": ("id_token_algorithm_not_allowed", lambda _: unsigned),
    "hs256_with_the_public_key": (
        "id_token_algorithm_not_allowed",
        lambda p: lambda claims: hs256_with_public_key(p.key, claims),
    ),
    "another_issuer": (
        "id_token_issuer_mismatch",
        lambda p: _resigned(p, iss="http://127.0.0.1:9/evil"),
    ),
    "expired": (
        "id_token_expired",
        lambda p: _resigned(p, exp=now() - 3600, iat=now() - 7200),
    ),
    "another_audience": ("id_token_audience_mismatch", lambda p: _resigned(p, aud="acgs-other")),
    "several_audiences_without_azp": (
        "id_token_azp_missing",
        lambda p: _resigned(p, aud=["acgs-web", "acgs-other"]),
    ),
    "another_authorized_party": (
        "id_token_azp_mismatch",
        lambda p: _resigned(p, aud=["acgs-web", "acgs-other"], azp="acgs-other"),
    ),
    "not_yet_valid": ("id_token_not_yet_valid", lambda p: _resigned(p, nbf=now() + 3600)),
    "signed_by_another_key": ("id_token_unknown_key", lambda _: _other_key),
}


def _other_key(claims: dict[str, Any]) -> str:
    key = RSAKey.generate_key(2048, parameters={"kid": "attacker"}, private=True)
    return signed(key, claims)


@pytest.fixture(scope="module")
def proxied(api: Api, oidc_provider: OidcProvider) -> Iterator[tuple[OidcTenant, list[Forge]]]:
    forge: list[Forge] = [_resigned(oidc_provider)]
    with (
        token_swapping_proxy(oidc_provider, forge) as discovery,
        api.client(api.token(MaciRole.EXECUTIVE)) as platform,
    ):
        tenant = OidcTenant(
            api, platform, oidc_provider, "oidc-forged", config={"discovery_url": discovery}
        )
        yield tenant, forge


def test_the_proxy_itself_changes_nothing(
    api: Api, proxied: tuple[OidcTenant, list[Forge]], oidc_provider: OidcProvider,
    browser: Browser,
) -> None:  # fmt: skip
    tenant, forge = proxied
    forge[0] = _resigned(oidc_provider)  # the real claims, the provider's key
    signed_in = browser.sign_in(api, tenant.integration_id, "alice", "alice-oidc-pw")
    assert signed_in.status_code == 200, signed_in.text


@pytest.mark.parametrize("case", sorted(FORGERIES))
def test_a_forged_id_token_is_refused(
    case: str,
    api: Api,
    proxied: tuple[OidcTenant, list[Forge]],
    oidc_provider: OidcProvider,
    browser: Browser,
) -> None:
    tenant, forge = proxied
    reason, make = FORGERIES[case]
    forge[0] = make(oidc_provider)
    _refused(browser.sign_in(api, tenant.integration_id, "alice", "alice-oidc-pw"))
    [denial] = _denials(api, tenant.id)[-1:]
    assert denial["outcome"] == reason
