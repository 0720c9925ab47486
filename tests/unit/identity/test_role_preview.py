"""`SignIn.preview_roles`: the roles a user would get at sign-in, from the same mappings (of the
method's source type) and the same resolution as the sign-in itself; nothing is opened or
audited."""

from __future__ import annotations

from uuid import uuid4

import pytest

from domain.errors import NotFound
from domain.maci import MaciRole
from tests.unit.identity.test_federated_sign_in import IDP, TENANT, Ports, _sign_in


async def test_the_preview_matches_the_methods_own_source_type() -> None:
    ports = Ports()
    ports.map("saml_attribute", "admins", MaciRole.EXECUTIVE, priority=10)
    ports.map("saml_attribute", "finance", MaciRole.AUDITOR, priority=20)
    ports.map("oidc_claim", "admins", MaciRole.JUDICIAL)
    sign_in, app, _ = _sign_in(ports)

    resolved = await sign_in.preview_roles(TENANT, IDP, "saml", ["admins", "finance", "x"])
    assert resolved is not None
    assert resolved.roles == (MaciRole.AUDITOR, MaciRole.EXECUTIVE)
    assert len(resolved.matched) == 2
    oidc = await sign_in.preview_roles(TENANT, IDP, "oidc", ["admins"])
    assert oidc is not None
    assert oidc.roles == (MaciRole.JUDICIAL,)
    assert ports.opened == []  # no session
    assert app.entries == []  # nothing audited


async def test_ldap_groups_compare_as_the_directorys_do() -> None:
    ports = Ports()
    ports.map("ldap_group", "cn=admins,ou=groups,dc=acme,dc=test", MaciRole.EXECUTIVE)
    sign_in, _, _ = _sign_in(ports)
    resolved = await sign_in.preview_roles(
        TENANT, IDP, "ldap", ["CN=Admins , OU=Groups,DC=Acme,DC=Test"]
    )
    assert resolved is not None
    assert resolved.roles == (MaciRole.EXECUTIVE,)


async def test_no_match_gives_the_default_role_or_a_refusal() -> None:
    sign_in, _, _ = _sign_in(Ports())
    resolved = await sign_in.preview_roles(TENANT, IDP, "oauth", ["read:user"])
    assert resolved is not None
    assert resolved.roles == (MaciRole.MONITOR,)
    assert resolved.matched == ()
    refusing, _, _ = _sign_in(Ports(default_role=None))
    assert await refusing.preview_roles(TENANT, IDP, "saml", ["admins"]) is None


async def test_an_unknown_tenant_or_method_is_refused() -> None:
    sign_in, _, _ = _sign_in(Ports())
    with pytest.raises(NotFound):
        await sign_in.preview_roles(uuid4(), IDP, "saml", [])
    with pytest.raises(ValueError, match="unknown auth method"):
        await sign_in.preview_roles(TENANT, IDP, "kerberos", [])
