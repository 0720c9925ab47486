"""A tenant whose users sign in through the fixture's slapd: what a platform operator sets up
before a directory user arrives (the tenant, its LDAP integration, and the `executives` group
mapped to EXECUTIVE), over the API."""

from __future__ import annotations

from uuid import UUID, uuid4

import httpx

from domain.maci import MaciRole
from tests.peers.http import HASH, Api
from tests.peers.slapd import BASE_DN, Slapd

EXECUTIVES = f"cn=executives,ou=groups,{BASE_DN}"


def directory_tenant(
    api: Api, platform: httpx.Client, slapd: Slapd, prefix: str
) -> tuple[UUID, str]:
    """(tenant id, slug) of a new tenant whose directory's executives are its EXECUTIVEs."""
    slug = f"{prefix}-{uuid4().hex[:10]}"
    tenant_id = UUID(api.create_tenant(platform, slug)["tenant_id"])
    with api.client(api.token(MaciRole.EXECUTIVE, tenant_id=tenant_id)) as admin:
        created = admin.post(
            f"/v1/tenants/{tenant_id}/integrations",
            json={
                "integration_type": "ldap",
                "integration_name": "Directory",
                "config": {
                    "server_url": slapd.ldaps_url,
                    "base_dn": slapd.base_dn,
                    "bind_dn": slapd.service_dn,
                    "bind_password": slapd.service_password,
                    "ca_cert_pem": slapd.ca_pem,
                    "group_search_filter": "(|(member={user_dn})(memberUid={username}))",
                },
                "constitutional_hash": HASH,
            },
        )
        assert created.status_code == 201, created.text
        mapped = admin.post(
            f"/v1/tenants/{tenant_id}/role-mappings",
            json={
                "integration_id": created.json()["integration_id"],
                "source_type": "ldap_group",
                "source_value": EXECUTIVES,
                "maci_role": "EXECUTIVE",
                "priority": 10,
                "constitutional_hash": HASH,
            },
        )
        assert mapped.status_code == 201, mapped.text
    api.wait_projected()
    return tenant_id, slug
