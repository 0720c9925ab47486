"""Where a principal lands after signing in: a page it may read."""

from __future__ import annotations

from uuid import uuid4

from api.console.sign_in_pages import start_page
from commands.context import Principal
from domain.maci import MaciRole
from domain.tenancy import SYSTEM_TENANT_ID


def test_operators_land_on_the_tenant_list() -> None:
    assert (
        start_page(Principal("op", SYSTEM_TENANT_ID, (MaciRole.EXECUTIVE,))) == "/console/tenants"
    )


def test_a_tenant_executive_lands_on_the_tenant_page() -> None:
    tenant = uuid4()
    principal = Principal("admin", tenant, (MaciRole.EXECUTIVE,))
    assert start_page(principal) == f"/console/tenants/{tenant}"


def test_other_tenant_roles_land_on_the_policies_every_role_reads() -> None:
    tenant = uuid4()
    for role in (MaciRole.AUDITOR, MaciRole.LEGISLATIVE, MaciRole.JUDICIAL):
        principal = Principal("user", tenant, (role,))
        assert start_page(principal) == f"/console/tenants/{tenant}/policies", role
