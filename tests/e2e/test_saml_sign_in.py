"""SAML sign-in through the real browser flow against real pysaml2 IdPs over HTTP: the SP
metadata, the signed AuthnRequest, the IdP's login form, the signed response posted to the ACS,
attributes to the profile and roles, the 8-hour session, the return URL, encrypted assertions,
two IdPs for one tenant, IdP-initiated sign-in when allowed, and single logout both ways."""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from lxml import etree

from domain.maci import MaciRole
from infra.tokens import TokenVerifier
from tests.e2e.saml_support import RETURN_TO, Browser, SamlTenant
from tests.peers.http import HASH, Api
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
