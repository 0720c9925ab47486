"""A tenant with SAML integrations on the fixture's IdPs, and the browser's part of the flow
(follow the redirect to the IdP, post its login form, post the SAMLResponse to the ACS)."""

from __future__ import annotations

import re
from html import unescape
from typing import Any
from uuid import UUID

import httpx
import psycopg

from domain.maci import MaciRole
from tests.peers.http import HASH, Api
from tests.peers.saml_idp import KeyPair, SamlIdp, make_key_pair

RETURN_TO = "https://app.acme.test/"
# The attribute names the pysaml2 IdP sends (its default attribute maps), mapped to the profile.
ATTRIBUTE_MAP = {
    "username": "urn:mace:dir:attribute-def:uid",
    "email": "urn:mace:dir:attribute-def:mail",
    "name": "urn:mace:dir:attribute-def:displayName",
    "groups": "groups",
}
_INPUT = re.compile(r'<input type="hidden" name="([^"]+)" value="([^"]*)"/>')
_ACTION = re.compile(r'<form method="post" action="([^"]+)"')


def hidden_fields(page: str) -> tuple[str, dict[str, str]]:
    """The action and hidden fields of an HTML form."""
    action = _ACTION.search(page)
    assert action is not None, page[:500]
    return unescape(action.group(1)), {k: unescape(v) for k, v in _INPUT.findall(page)}


class SamlTenant:
    """A tenant, its admin client, and SAML integrations added with `add`."""

    def __init__(self, api: Api, platform: httpx.Client, slug: str, **fields: Any) -> None:
        created = api.create_tenant(platform, slug, **fields)
        self.id = UUID(created["tenant_id"])
        self.slug = slug
        self.api = api
        self.admin = api.client(api.token(MaciRole.EXECUTIVE, tenant_id=self.id))
        self.sp_keys: KeyPair = make_key_pair(f"SP {slug}")

    def add(self, idp: SamlIdp, name: str = "Corporate SSO", **config: Any) -> str:
        """A SAML integration on `idp`, trusted by it; its id."""
        body = {
            "idp_metadata_url": idp.metadata_url,
            "sp_entity_id": f"urn:acgs:sp:{self.slug}:{name.replace(' ', '-').lower()}",
            "sp_private_key": self.sp_keys.key_pem,
            "sp_certificate": self.sp_keys.cert_pem,
            "allowed_redirect_urls": [RETURN_TO],
            "attribute_map": ATTRIBUTE_MAP,
            **config,
        }
        response = self.admin.post(
            f"/v1/tenants/{self.id}/integrations",
            json={
                "integration_type": "saml",
                "integration_name": name,
                "config": body,
                "constitutional_hash": HASH,
            },
        )
        assert response.status_code == 201, response.text
        integration_id = str(response.json()["integration_id"])
        self.api.wait_projected()
        metadata = httpx.get(f"{self.api.url}/v1/auth/saml/{integration_id}/metadata")
        assert metadata.status_code == 200, metadata.text
        idp.trust(metadata.text, sp_cert_pem=self.sp_keys.cert_pem)
        return integration_id

    def map(self, integration_id: str, value: str, role: str, priority: int = 100) -> None:
        response = self.admin.post(
            f"/v1/tenants/{self.id}/role-mappings",
            json={
                "integration_id": integration_id,
                "source_type": "saml_attribute",
                "source_value": value,
                "maci_role": role,
                "priority": priority,
                "constitutional_hash": HASH,
            },
        )
        assert response.status_code == 201, response.text
        self.api.wait_projected()

    def audit(self, action: str = "saml_login") -> list[dict[str, Any]]:
        return audit_rows(self.api, self.id, action)


def audit_rows(api: Api, tenant_id: UUID, action: str = "saml_login") -> list[dict[str, Any]]:
    """The tenant's audit records of `action`, oldest first (details with the result)."""
    api.wait_projected()
    with psycopg.connect(api.system.app_conninfo) as conn, conn.transaction():
        conn.execute("SELECT set_config('app.current_tenant_id', %s, true)", [str(tenant_id)])
        rows = conn.execute(
            "SELECT result, details FROM tenant_audit_log WHERE action = %s ORDER BY timestamp",
            [action],
        ).fetchall()
    return [{"result": r[0], **r[1]} for r in rows]


class Browser:
    """httpx as the user's browser: follows redirects, posts the forms it is given."""

    def __init__(self, api: Api) -> None:
        self.api = api
        self.client = httpx.Client(timeout=30)

    def close(self) -> None:
        self.client.close()

    def start(self, integration_id: str, return_to: str | None = None) -> str:
        """Follow the login redirect to the IdP; its login form's key."""
        params = {"return_to": return_to} if return_to else {}
        page = self.client.get(
            f"{self.api.url}/v1/auth/saml/{integration_id}/login",
            params=params,
            follow_redirects=True,
        )
        assert page.status_code == 200, page.text
        key = re.search(r'name="key" value="([^"]+)"', page.text)
        assert key is not None, page.text[:300]
        self.idp_login_url = str(page.url).split("/sso/")[0] + "/sso/login"
        return key.group(1)

    def sign_in_at_idp(self, key: str, username: str, password: str) -> tuple[str, dict[str, str]]:
        page = self.client.post(
            self.idp_login_url, data={"key": key, "username": username, "password": password}
        )
        assert page.status_code == 200, page.text
        return hidden_fields(page.text)

    def post_to_acs(self, action: str, fields: dict[str, str]) -> httpx.Response:
        return self.client.post(action, data=fields, follow_redirects=False)

    def sign_in(
        self, integration_id: str, username: str, password: str, return_to: str | None = None
    ) -> httpx.Response:
        key = self.start(integration_id, return_to)
        action, fields = self.sign_in_at_idp(key, username, password)
        return self.post_to_acs(action, fields)
