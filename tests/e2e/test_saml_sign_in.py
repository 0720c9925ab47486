"""SAML sign-in through the real browser flow against real pysaml2 IdPs over HTTP: the SP
metadata, the signed AuthnRequest, the IdP's login form, the signed response posted to the ACS,
attributes to the profile and roles, the 8-hour session, the return URL, encrypted assertions,
two IdPs for one tenant, IdP-initiated sign-in when allowed, and single logout both ways."""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import parse_qs, urlsplit

import httpx
import psycopg
import pytest
from lxml import etree

from domain.maci import MaciRole
from infra.tokens import TokenVerifier
from tests.e2e.saml_support import RETURN_TO, Browser, SamlTenant
from tests.peers.http import HASH, Api, free_port
from tests.peers.saml_idp import SamlIdp

pytestmark = [pytest.mark.e2e, pytest.mark.postgres, pytest.mark.saml]
MD = "urn:oasis:names:tc:SAML:2.0:metadata"


@pytest.fixture
def tenant(api: Api, platform: httpx.Client, unique: str) -> Iterator[SamlTenant]:
    made = SamlTenant(api, platform, f"saml-{unique}")
    yield made
    made.admin.close()


@pytest.fixture
def browser(api: Api) -> Iterator[Browser]:
    made = Browser(api)
    yield made
    made.close()


def test_sp_metadata_names_the_acs_and_slo_and_is_signed(
    api: Api, tenant: SamlTenant, saml_idp: SamlIdp
) -> None:
    integration = tenant.add(saml_idp)
    response = httpx.get(f"{api.url}/v1/auth/saml/{integration}/metadata")
    assert response.headers["content-type"].startswith("application/samlmetadata+xml")
    assert response.headers["x-constitutional-hash"] == HASH
    root = etree.fromstring(response.content)
    assert root.get("entityID") == f"urn:acgs:sp:{tenant.slug}:corporate-sso"
    acs = root.find(f".//{{{MD}}}AssertionConsumerService")
    assert acs is not None
    assert acs.get("Location") == f"{api.url}/v1/auth/saml/acs"
    slo = root.find(f".//{{{MD}}}SingleLogoutService")
    assert slo is not None
    assert slo.get("Location") == f"{api.url}/v1/auth/saml/{integration}/slo"
    assert root.find(".//{http://www.w3.org/2000/09/xmldsig#}Signature") is not None


def test_the_browser_flow_signs_in_with_roles_from_attributes(
    api: Api, tenant: SamlTenant, saml_idp: SamlIdp, browser: Browser
) -> None:
    integration = tenant.add(saml_idp)
    tenant.map(integration, "admins", "EXECUTIVE", priority=10)
    tenant.map(integration, "department=Finance", "AUDITOR", priority=20)
    tenant.map(integration, "staff", "IMPLEMENTER")

    signed_in = browser.sign_in(integration, "alice", "alice-password")

    assert signed_in.status_code == 200, signed_in.text
    body = signed_in.json()
    assert body["maci_roles"] == ["AUDITOR", "EXECUTIVE"]
    assert body["constitutional_hash"] == HASH
    verifier: TokenVerifier = api.services.verifier
    claims = verifier.verify(body["access_token"])
    assert claims.sub == "p-alice"
    assert claims.auth_method == "saml"
    assert claims.tenant_id == tenant.id
    assert claims.roles == (MaciRole.AUDITOR, MaciRole.EXECUTIVE)
    [audit] = tenant.audit()
    assert audit["result"] == "success"
    assert audit["username"] == "alice"
    assert audit["email"] == "alice@acme.test"
    assert audit["issuer"] == saml_idp.entity_id
    with api.client(body["access_token"]) as alice:
        me = alice.get("/v1/auth/me")
    assert me.json()["auth_method"] == "saml"


def _fragment(response: httpx.Response) -> dict[str, str]:
    location = response.headers["location"]
    return {k: v[0] for k, v in parse_qs(urlsplit(location).fragment).items()}


def test_the_session_lasts_eight_hours_and_refreshes_without_a_directory(
    api: Api, tenant: SamlTenant, saml_idp: SamlIdp, browser: Browser
) -> None:
    integration = tenant.add(saml_idp)
    body = browser.sign_in(integration, "bob", "bob-password").json()
    assert body["maci_roles"] == ["MONITOR"]  # no mapping matched: the tenant's default role
    sid = api.services.verifier.verify(body["access_token"]).sid
    with psycopg.connect(api.system.app_conninfo) as conn, conn.transaction():
        conn.execute("SELECT set_config('app.current_tenant_id', %s, true)", [str(tenant.id)])
        row = conn.execute(
            "SELECT expires_at - created_at AS lifetime, auth_method FROM auth_sessions "
            "WHERE sid = %s",
            [sid],
        ).fetchone()
    assert row is not None
    assert row[0].total_seconds() == 8 * 3600
    assert row[1] == "saml"
    refreshed = httpx.post(
        f"{api.url}/v1/auth/token/refresh", json={"refresh_token": body["refresh_token"]}
    )
    assert refreshed.status_code == 200, refreshed.text
    assert refreshed.json()["maci_roles"] == ["MONITOR"]


def test_a_sign_in_returns_to_an_allowed_url_with_the_tokens_in_the_fragment(
    api: Api, tenant: SamlTenant, saml_idp: SamlIdp, browser: Browser
) -> None:
    integration = tenant.add(saml_idp)
    signed_in = browser.sign_in(integration, "alice", "alice-password", RETURN_TO + "reports")
    assert signed_in.status_code == 303, signed_in.text
    assert signed_in.headers["location"].startswith(RETURN_TO + "reports#")
    tokens = _fragment(signed_in)
    assert api.services.verifier.verify(tokens["access_token"]).auth_method == "saml"
    refused = httpx.get(
        f"{api.url}/v1/auth/saml/{integration}/login",
        params={"return_to": "https://evil.test/"},
    )
    assert refused.status_code == 422
    assert refused.json()["error"]["details"]["fields"][0]["field"] == "return_to"


def test_a_wrong_password_at_the_idp_sends_nothing(
    tenant: SamlTenant, saml_idp: SamlIdp, browser: Browser
) -> None:
    integration = tenant.add(saml_idp)
    key = browser.start(integration)
    page = browser.client.post(
        browser.idp_login_url, data={"key": key, "username": "alice", "password": "wrong"}
    )
    assert page.status_code == 401
    assert "SAMLResponse" not in page.text


def test_encrypted_assertions_are_decrypted_and_required_when_configured(
    api: Api, tenant: SamlTenant, saml_idps: list[SamlIdp], browser: Browser
) -> None:
    idp = saml_idps[1]
    integration = tenant.add(idp, "Encrypted SSO", want_assertions_encrypted=True)
    idp.encrypt_assertions = True
    try:
        signed_in = browser.sign_in(integration, "alice", "alice-password")
    finally:
        idp.encrypt_assertions = False
    assert signed_in.status_code == 200, signed_in.text
    assert api.services.verifier.verify(signed_in.json()["access_token"]).sub == "p-alice"
    plain = browser.sign_in(integration, "alice", "alice-password")  # not encrypted: refused
    assert plain.status_code == 401
    assert plain.json()["error"]["code"] == "INVALID_ASSERTION"
    assert tenant.audit()[-1]["outcome"] == "not_encrypted"


def test_two_idps_for_one_tenant_each_with_its_own_mappings(
    api: Api, tenant: SamlTenant, saml_idps: list[SamlIdp], browser: Browser
) -> None:
    first = tenant.add(saml_idps[0], "Okta")
    second = tenant.add(saml_idps[1], "Entra ID")
    tenant.map(first, "admins", "EXECUTIVE")
    tenant.map(second, "admins", "AUDITOR")
    via_first = browser.sign_in(first, "alice", "alice-password").json()
    via_second = browser.sign_in(second, "alice", "alice-password").json()
    assert via_first["maci_roles"] == ["EXECUTIVE"]
    assert via_second["maci_roles"] == ["AUDITOR"]
    issuers = [a["issuer"] for a in tenant.audit() if a["result"] == "success"]
    assert issuers == [saml_idps[0].entity_id, saml_idps[1].entity_id]


def test_idp_initiated_sign_in_only_when_the_integration_opts_in(
    api: Api, tenant: SamlTenant, saml_idp: SamlIdp, browser: Browser
) -> None:
    closed = tenant.add(saml_idp, "Closed")
    opened = tenant.add(saml_idp, "Open", allow_idp_initiated=True)
    acs = f"{api.url}/v1/auth/saml/acs"
    for integration, expected in ((closed, 401), (opened, 303)):
        entity = f"urn:acgs:sp:{tenant.slug}:{'closed' if integration == closed else 'open'}"
        message = saml_idp.response_for("alice", entity, acs, None)
        answer = browser.post_to_acs(acs, {"SAMLResponse": message, "RelayState": RETURN_TO})
        assert answer.status_code == expected, answer.text
    assert tenant.audit()[0]["outcome"] == "unsolicited_not_allowed"
    assert _fragment(answer)["token_type"] == "Bearer"


def test_sp_initiated_single_logout_ends_the_session_here_and_at_the_idp(
    api: Api, tenant: SamlTenant, saml_idp: SamlIdp, browser: Browser
) -> None:
    integration = tenant.add(saml_idp)
    body = browser.sign_in(integration, "alice", "alice-password").json()
    with api.client(body["access_token"]) as alice:
        out = alice.post(f"/v1/auth/saml/{integration}/slo")
        assert out.status_code == 200, out.text
        assert out.json()["session_ended"] is True
        assert alice.get("/v1/auth/me").status_code == 401
    done = browser.client.get(out.json()["redirect_url"], follow_redirects=True)
    assert done.status_code == 200, done.text
    assert done.json() == {"logged_out": True, "constitutional_hash": HASH}
    assert saml_idp.logouts[-1]["name_id"] == "p-alice"
    again = browser.client.get(str(done.url))  # the IdP's answer is used once
    assert again.status_code == 401


def test_idp_initiated_single_logout_ends_the_users_sessions(
    api: Api, tenant: SamlTenant, saml_idp: SamlIdp, browser: Browser
) -> None:
    integration = tenant.add(saml_idp)
    alice = browser.sign_in(integration, "alice", "alice-password").json()
    bob = browser.sign_in(integration, "bob", "bob-password").json()
    url = saml_idp.logout_url(
        f"urn:acgs:sp:{tenant.slug}:corporate-sso",
        f"{api.url}/v1/auth/saml/{integration}/slo",
        "p-alice",
    )
    answer = browser.client.get(url, follow_redirects=False)
    assert answer.status_code == 303, answer.text
    assert answer.headers["location"].startswith(saml_idp.url + "/slo/redirect?SAMLResponse=")
    assert browser.client.get(answer.headers["location"]).status_code == 200
    with api.client(alice["access_token"]) as client:
        assert client.get("/v1/auth/me").status_code == 401
    with api.client(bob["access_token"]) as client:
        assert client.get("/v1/auth/me").status_code == 200
    assert "&Signature=" in url
    forged = url.replace("&Signature=", "&Signature=AAAA")
    assert browser.client.get(forged).status_code == 401
    unsigned = url.split("&Signature=")[0]
    assert browser.client.get(unsigned).status_code == 401
    reasons = [a["outcome"] for a in tenant.audit() if a["result"] == "denied"]
    assert reasons == ["invalid_logout_request", "signature_missing"]


def test_an_integration_whose_idp_cannot_be_read_is_not_found_not_an_error(
    api: Api, tenant: SamlTenant, browser: Browser
) -> None:
    response = tenant.admin.post(
        f"/v1/tenants/{tenant.id}/integrations",
        json={
            "integration_type": "saml",
            "integration_name": "Gone IdP",
            "config": {
                "idp_metadata_url": f"http://127.0.0.1:{free_port()}/metadata",  # nobody there
                "sp_entity_id": "urn:acgs:sp:gone",
                "timeout_seconds": 1,
            },
            "constitutional_hash": HASH,
        },
    )
    assert response.status_code == 201, response.text
    api.wait_projected()
    integration = response.json()["integration_id"]
    for path in ("metadata", "login"):
        answer = httpx.get(f"{api.url}/v1/auth/saml/{integration}/{path}")
        assert answer.status_code == 404, answer.text
        assert answer.json()["error"]["code"] == "NOT_FOUND"
