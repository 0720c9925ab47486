"""The permission table, held as data, and the one check every command uses.

A principal of another tenant gets NotFound, never Forbidden: a tenant must not learn that
another tenant's resource exists.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from uuid import UUID

from commands.context import Principal
from domain.errors import Forbidden, NotFound
from domain.maci import MaciRole


class Scope(StrEnum):
    PLATFORM = "platform"  # only principals of the system tenant
    TENANT = "tenant"  # principals of the target tenant, and platform principals


class Permission(StrEnum):
    TENANT_CREATE = "tenant:create"
    TENANT_LIST = "tenant:list"
    TENANT_READ = "tenant:read"
    TENANT_UPDATE_PROFILE = "tenant:update-profile"
    TENANT_MANAGE_PLAN = "tenant:manage-plan"  # quotas, billing plan, status
    TENANT_DEACTIVATE = "tenant:deactivate"
    TENANT_REACTIVATE = "tenant:reactivate"
    TOKEN_ISSUE = "token:issue"  # noqa: S105 - a permission name
    AUDIT_READ = "audit:read"
    INTEGRATION_MANAGE = "integration:manage"  # create, change, test, delete
    INTEGRATION_READ = "integration:read"  # secrets redacted
    INTEGRATION_HEALTH = "integration:health"
    TENANT_KEY_ROTATE = "tenant-key:rotate"
    POLICY_READ = "policy:read"
    POLICY_AUTHOR = "policy:author"
    DECISION_REQUEST = "decision:request"
    DECISION_LOG_CONFIGURE = "decision-log:configure"
    AUDIT_EXPORT = "audit:export"
    AUDIT_READ_ALL = "audit:read-all"  # across tenants
    AUDIT_RETENTION = "audit:retention"  # retention days and legal hold
    ROLE_MAPPING_MANAGE = "role-mapping:manage"
    ROLE_MAPPING_READ = "role-mapping:read"
    GAP_READ = "gap:read"
    GAP_REVIEW = "gap:review"  # accept a gap (with a reason) or reopen it
    SHADOW_READ = "shadow:read"
    SHADOW_SUBMIT = "shadow:submit"  # send legacy decisions to be compared
    SHADOW_ROUTE = "shadow:route"  # configure, request a step, roll back
    SHADOW_APPROVE = "shadow:approve"  # approve a promotion past 50 %
    MIGRATION_READ = "migration:read"
    MIGRATION_CONVERT = "migration:convert"  # policy_conversion and gap_analysis jobs
    MIGRATION_IMPORT = "migration:import"  # decision_log_import and shadow_mode jobs


@dataclass(frozen=True)
class Rule:
    roles: frozenset[MaciRole]
    scope: Scope
    description: str


_E, _J, _A = MaciRole.EXECUTIVE, MaciRole.JUDICIAL, MaciRole.AUDITOR
_EVERY_ROLE = frozenset({MaciRole.MONITOR})  # every role includes MONITOR

PERMISSIONS: dict[Permission, Rule] = {
    Permission.TENANT_CREATE: Rule(frozenset({_E}), Scope.PLATFORM, "Create a tenant"),
    Permission.TENANT_LIST: Rule(frozenset({_E, _J, _A}), Scope.PLATFORM, "List all tenants"),
    Permission.TENANT_READ: Rule(frozenset({_E}), Scope.TENANT, "Read a tenant and its usage"),
    Permission.TENANT_UPDATE_PROFILE: Rule(
        frozenset({_E}), Scope.TENANT, "Change a tenant's name, admin email and sign-in settings"
    ),
    Permission.TENANT_MANAGE_PLAN: Rule(
        frozenset({_E}), Scope.PLATFORM, "Change quotas, billing plan or status; suspend"
    ),
    Permission.TENANT_DEACTIVATE: Rule(frozenset({_E}), Scope.PLATFORM, "Deactivate or purge"),
    Permission.TENANT_REACTIVATE: Rule(frozenset({_E}), Scope.PLATFORM, "Reactivate a tenant"),
    Permission.TOKEN_ISSUE: Rule(frozenset({_E}), Scope.PLATFORM, "Issue access tokens"),
    Permission.AUDIT_READ: Rule(frozenset({_E, _J, _A}), Scope.TENANT, "Read the audit log"),
    Permission.INTEGRATION_MANAGE: Rule(
        frozenset({_E}), Scope.TENANT, "Create, change, test or delete integrations"
    ),
    Permission.INTEGRATION_READ: Rule(
        _EVERY_ROLE, Scope.TENANT, "Read integrations (secrets redacted)"
    ),
    Permission.INTEGRATION_HEALTH: Rule(_EVERY_ROLE, Scope.TENANT, "Read integration health"),
    Permission.TENANT_KEY_ROTATE: Rule(
        frozenset({_E}), Scope.PLATFORM, "Rotate a tenant's key-encryption key"
    ),
    Permission.POLICY_READ: Rule(
        frozenset({MaciRole.MONITOR}), Scope.TENANT, "Read policies and their versions"
    ),
    Permission.POLICY_AUTHOR: Rule(
        frozenset({_E, MaciRole.LEGISLATIVE}),
        Scope.TENANT,
        "Submit, activate, roll back or retire policies",
    ),
    Permission.DECISION_REQUEST: Rule(
        frozenset({MaciRole.MONITOR}), Scope.TENANT, "Ask for policy decisions"
    ),
    Permission.DECISION_LOG_CONFIGURE: Rule(
        frozenset({_E}), Scope.TENANT, "Choose whether decision logs keep the (masked) input"
    ),
    Permission.AUDIT_EXPORT: Rule(
        frozenset({_E, _J, _A}), Scope.TENANT, "Export the audit log and download exports"
    ),
    Permission.AUDIT_READ_ALL: Rule(
        frozenset({_E, _J, _A}), Scope.PLATFORM, "Query the audit log across tenants"
    ),
    Permission.AUDIT_RETENTION: Rule(
        frozenset({_E}), Scope.PLATFORM, "Change audit retention and legal hold"
    ),
    Permission.ROLE_MAPPING_MANAGE: Rule(
        frozenset({_E}), Scope.TENANT, "Create, change or delete role mappings"
    ),
    Permission.ROLE_MAPPING_READ: Rule(_EVERY_ROLE, Scope.TENANT, "Read role mappings"),
    Permission.GAP_READ: Rule(_EVERY_ROLE, Scope.TENANT, "Read governance gaps and their trend"),
    Permission.GAP_REVIEW: Rule(
        frozenset({_E}), Scope.TENANT, "Accept a governance gap with a reason, or reopen it"
    ),
    Permission.SHADOW_READ: Rule(
        _EVERY_ROLE, Scope.TENANT, "Read shadow-mode settings and metrics"
    ),
    Permission.SHADOW_SUBMIT: Rule(
        frozenset({_E, MaciRole.CONTROLLER, MaciRole.IMPLEMENTER}),
        Scope.TENANT,
        "Send legacy decisions to shadow mode",
    ),
    Permission.SHADOW_ROUTE: Rule(
        frozenset({_E, MaciRole.CONTROLLER, MaciRole.IMPLEMENTER}),
        Scope.TENANT,
        "Configure shadow mode, request a routing step, roll back",
    ),
    Permission.SHADOW_APPROVE: Rule(
        frozenset({_J}),
        Scope.TENANT,
        "Approve a shadow rollout's promotion past 50 % (not its requester)",
    ),
    Permission.MIGRATION_READ: Rule(
        _EVERY_ROLE, Scope.TENANT, "Read migration jobs, their results and reports"
    ),
    Permission.MIGRATION_CONVERT: Rule(
        frozenset({_E, MaciRole.LEGISLATIVE}),
        Scope.TENANT,
        "Start or cancel policy_conversion and gap_analysis jobs",
    ),
    Permission.MIGRATION_IMPORT: Rule(
        frozenset({_E, MaciRole.IMPLEMENTER, MaciRole.CONTROLLER}),
        Scope.TENANT,
        "Start or cancel decision_log_import and shadow_mode jobs",
    ),
}

# The permission that starts or cancels a migration job, by its kind. A name not listed needs
# MIGRATION_CONVERT, so a request for a kind the deployment lacks is a 422 naming the known kinds
# only to a caller who may start jobs at all.
JOB_PERMISSIONS: dict[str, Permission] = {
    "policy_conversion": Permission.MIGRATION_CONVERT,
    "gap_analysis": Permission.MIGRATION_CONVERT,
    "decision_log_import": Permission.MIGRATION_IMPORT,
    "shadow_mode": Permission.MIGRATION_IMPORT,
}


def job_permission(job_type: object) -> Permission:
    return JOB_PERMISSIONS.get(str(job_type), Permission.MIGRATION_CONVERT)


def authorize(principal: Principal, permission: Permission, tenant_id: UUID | None = None) -> None:
    """Raise unless `principal` holds `permission` on `tenant_id` (None: platform-wide)."""
    rule = PERMISSIONS[permission]
    if tenant_id is not None and not principal.is_platform and tenant_id != principal.tenant_id:
        raise NotFound("tenant not found", {"tenant_id": str(tenant_id)})
    if rule.scope is Scope.PLATFORM and not principal.is_platform:
        raise Forbidden(
            f"{rule.description}: platform principals only", {"permission": permission.value}
        )
    if not principal.effective_roles() & rule.roles:
        needed = sorted(r.value for r in rule.roles)
        raise Forbidden(
            f"{rule.description}: requires one of {', '.join(needed)}",
            {"permission": permission.value, "required_roles": needed},
        )
