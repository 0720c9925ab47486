"""The permission table and the single authorization check."""

from __future__ import annotations

from uuid import uuid4

import pytest

from commands.authorization import PERMISSIONS, Permission, Scope, authorize
from commands.context import Principal
from domain.errors import Forbidden, NotFound
from domain.maci import MaciRole
from domain.tenancy import SYSTEM_TENANT_ID

TENANT = uuid4()


def principal(*roles: MaciRole, tenant: object = TENANT) -> Principal:
    return Principal(sub="u", tenant_id=tenant, roles=roles)  # type: ignore[arg-type]


def test_every_permission_has_a_rule() -> None:
    assert set(PERMISSIONS) == set(Permission)


def test_rank_orders_executive_highest_and_monitor_lowest() -> None:
    ranked = sorted(MaciRole, key=lambda r: r.rank, reverse=True)
    assert ranked[0] is MaciRole.EXECUTIVE
    assert ranked[-1] is MaciRole.MONITOR


def test_judicial_includes_auditor_and_every_role_includes_monitor() -> None:
    assert MaciRole.AUDITOR in MaciRole.JUDICIAL.includes()
    assert all(MaciRole.MONITOR in r.includes() for r in MaciRole)


def test_platform_executive_may_create_tenants() -> None:
    authorize(principal(MaciRole.EXECUTIVE, tenant=SYSTEM_TENANT_ID), Permission.TENANT_CREATE)


def test_tenant_executive_may_not_create_tenants() -> None:
    with pytest.raises(Forbidden):
        authorize(principal(MaciRole.EXECUTIVE), Permission.TENANT_CREATE)


def test_another_tenants_resource_is_not_found_never_forbidden() -> None:
    with pytest.raises(NotFound):
        authorize(principal(MaciRole.EXECUTIVE), Permission.TENANT_READ, uuid4())


def test_own_tenant_with_too_low_a_role_is_forbidden() -> None:
    with pytest.raises(Forbidden) as err:
        authorize(principal(MaciRole.MONITOR), Permission.TENANT_READ, TENANT)
    assert err.value.details["required_roles"] == ["EXECUTIVE"]


def test_judicial_may_read_audit_through_auditor_inclusion() -> None:
    assert PERMISSIONS[Permission.AUDIT_READ].scope is Scope.TENANT
    authorize(principal(MaciRole.JUDICIAL), Permission.AUDIT_READ, TENANT)


def test_platform_auditor_may_list_tenants() -> None:
    authorize(principal(MaciRole.AUDITOR, tenant=SYSTEM_TENANT_ID), Permission.TENANT_LIST)


# Written by hand from the rules (not from PERMISSIONS): for each permission, the roles allowed
# on their own tenant and on the platform ("-" for none). Another tenant is always NotFound.
EVERY_ROLE = "EXECUTIVE JUDICIAL LEGISLATIVE CONTROLLER IMPLEMENTER AUDITOR MONITOR"
HAND_WRITTEN = {
    Permission.TENANT_CREATE: ("-", "EXECUTIVE"),
    Permission.TENANT_LIST: ("-", "EXECUTIVE JUDICIAL AUDITOR"),
    Permission.TENANT_READ: ("EXECUTIVE", "EXECUTIVE"),
    Permission.TENANT_UPDATE_PROFILE: ("EXECUTIVE", "EXECUTIVE"),
    Permission.TENANT_MANAGE_PLAN: ("-", "EXECUTIVE"),
    Permission.TENANT_DEACTIVATE: ("-", "EXECUTIVE"),
    Permission.TENANT_REACTIVATE: ("-", "EXECUTIVE"),
    Permission.TOKEN_ISSUE: ("-", "EXECUTIVE"),
    Permission.AUDIT_READ: ("EXECUTIVE JUDICIAL AUDITOR", "EXECUTIVE JUDICIAL AUDITOR"),
    Permission.INTEGRATION_MANAGE: ("EXECUTIVE", "EXECUTIVE"),
    Permission.INTEGRATION_READ: (EVERY_ROLE, EVERY_ROLE),
    Permission.INTEGRATION_HEALTH: (EVERY_ROLE, EVERY_ROLE),
    Permission.TENANT_KEY_ROTATE: ("-", "EXECUTIVE"),
    Permission.POLICY_READ: (EVERY_ROLE, EVERY_ROLE),
    Permission.POLICY_AUTHOR: ("EXECUTIVE LEGISLATIVE", "EXECUTIVE LEGISLATIVE"),
    Permission.DECISION_REQUEST: (EVERY_ROLE, EVERY_ROLE),
    Permission.DECISION_LOG_CONFIGURE: ("EXECUTIVE", "EXECUTIVE"),
    Permission.AUDIT_EXPORT: ("EXECUTIVE JUDICIAL AUDITOR", "EXECUTIVE JUDICIAL AUDITOR"),
    Permission.AUDIT_READ_ALL: ("-", "EXECUTIVE JUDICIAL AUDITOR"),
    Permission.AUDIT_RETENTION: ("-", "EXECUTIVE"),
    Permission.ROLE_MAPPING_MANAGE: ("EXECUTIVE", "EXECUTIVE"),
    Permission.ROLE_MAPPING_READ: (EVERY_ROLE, EVERY_ROLE),
    Permission.GAP_READ: (EVERY_ROLE, EVERY_ROLE),
    Permission.GAP_REVIEW: ("EXECUTIVE", "EXECUTIVE"),
    Permission.SHADOW_READ: (EVERY_ROLE, EVERY_ROLE),
    Permission.SHADOW_SUBMIT: (
        "EXECUTIVE CONTROLLER IMPLEMENTER",
        "EXECUTIVE CONTROLLER IMPLEMENTER",
    ),
    Permission.SHADOW_ROUTE: (
        "EXECUTIVE CONTROLLER IMPLEMENTER",
        "EXECUTIVE CONTROLLER IMPLEMENTER",
    ),
    Permission.SHADOW_APPROVE: ("JUDICIAL", "JUDICIAL"),
    Permission.MIGRATION_READ: (EVERY_ROLE, EVERY_ROLE),
    Permission.MIGRATION_CONVERT: ("EXECUTIVE LEGISLATIVE", "EXECUTIVE LEGISLATIVE"),
    Permission.MIGRATION_IMPORT: (
        "EXECUTIVE CONTROLLER IMPLEMENTER",
        "EXECUTIVE CONTROLLER IMPLEMENTER",
    ),
}


def _allowed(p: Principal, permission: Permission, tenant: object) -> str:
    try:
        authorize(p, permission, tenant)  # type: ignore[arg-type]
    except Forbidden:
        return "forbidden"
    except NotFound:
        return "not found"
    return "allowed"


@pytest.mark.parametrize("permission", list(Permission))
@pytest.mark.parametrize("role", list(MaciRole))
def test_every_role_on_every_permission_and_scope(permission: Permission, role: MaciRole) -> None:
    own_roles, platform_roles = HAND_WRITTEN[permission]
    on_own = "allowed" if role.value in own_roles.split() else "forbidden"
    on_platform = "allowed" if role.value in platform_roles.split() else "forbidden"
    # creating and listing tenants concern no tenant in particular
    target = None if permission in {Permission.TENANT_CREATE, Permission.TENANT_LIST} else TENANT
    assert _allowed(principal(role), permission, target) == on_own
    assert _allowed(principal(role, tenant=SYSTEM_TENANT_ID), permission, target) == on_platform
    if target is not None:
        assert _allowed(principal(role, tenant=uuid4()), permission, target) == "not found"
