"""Tenant commands: create, update, suspend, deactivate, purge, reactivate.

Each runs the shared preamble (`commands.preamble.CommandPreamble`): authorize the principal,
verify the constitutional hash, and build the event metadata; a refusal is audited and nothing
else is written.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any, Protocol
from uuid import UUID, uuid4

from commands.application import Claim, GovernanceApplication
from commands.authorization import Permission
from commands.context import CommandContext
from commands.preamble import CommandPreamble
from domain.errors import (
    Forbidden,
    NotFound,
    TenantNameTaken,
    TenantSlugTaken,
    ValidationFailed,
)
from domain.events import SYSTEM_ACTOR, EventMeta
from domain.tenancy import SYSTEM_TENANT_ID, SYSTEM_TENANT_SLUG
from domain.tenant.aggregate import PROFILE_FIELDS, Tenant
from domain.tenant.sign_in_settings import SignInSettings
from domain.tenant.values import Quotas, TenantStatus

SIGN_IN_FIELDS = frozenset(SignInSettings.FIELDS)
SELF_SERVICE_FIELDS = frozenset({"tenant_name", "admin_email"}) | SIGN_IN_FIELDS  # its EXECUTIVE
PLAN_FIELDS = frozenset({"billing_plan", "status"})  # platform principals only
QUOTA_FIELDS = frozenset(Quotas.BOUNDS)  # platform principals only
WRITABLE_FIELDS = SELF_SERVICE_FIELDS | PLAN_FIELDS | QUOTA_FIELDS


@dataclass(frozen=True)
class CreateTenant:
    tenant_name: object
    tenant_slug: object
    admin_email: object
    billing_plan: object = "standard"
    quotas: dict[str, object] = field(default_factory=dict)


@dataclass(frozen=True)
class TenantUpdate:
    tenant: Tenant
    updated_fields: list[str]


class TenantKeys(Protocol):
    """The tenant's key-encryption key (the key provider); a purge destroys it, so the secrets
    it protected are unreadable everywhere, backups included."""

    def destroy_tenant(self, tenant_id: UUID) -> None: ...


def name_claim(name: str) -> Claim:
    return ("tenant_name", name.casefold())


def slug_claim(slug: str) -> Claim:
    return ("tenant_slug", slug)


class TenantCommands:
    def __init__(
        self,
        app: GovernanceApplication,
        constitutional_hash: str,
        tenant_keys: TenantKeys | None = None,
    ) -> None:
        self._app = app
        self._hash = constitutional_hash
        self._tenant_keys = tenant_keys
        self._preamble = CommandPreamble(app, constitutional_hash)

    def create(self, ctx: CommandContext, command: CreateTenant) -> Tenant:
        tenant_id = uuid4()
        meta = self._preamble.begin(ctx, Permission.TENANT_CREATE, None, "create_tenant", tenant_id)
        unknown = sorted(set(command.quotas) - QUOTA_FIELDS)
        if unknown:
            raise ValidationFailed(
                f"unknown fields: {', '.join(unknown)}",
                {"fields": [{"field": f, "message": "unknown field"} for f in unknown]},
            )
        quotas = Quotas().changed(**command.quotas)
        tenant = Tenant.register(
            tenant_id=tenant_id,
            name=command.tenant_name,
            slug=command.tenant_slug,
            email=command.admin_email,
            plan=command.billing_plan,
            quotas=quotas,
            meta=meta,
        )
        self._app.save_for(
            tenant_id,
            tenant,
            claims=[slug_claim(tenant.tenant_slug), name_claim(tenant.tenant_name)],
        )
        return tenant

    def update(self, ctx: CommandContext, tenant_id: UUID, changes: dict[str, Any]) -> TenantUpdate:
        """Apply a partial update; quotas, plan and status need a platform principal."""
        unknown = sorted(set(changes) - WRITABLE_FIELDS)
        if unknown:
            raise ValidationFailed(
                f"fields cannot be changed: {', '.join(unknown)}",
                {
                    "fields": [
                        {"field": f, "message": "read-only or unknown field"} for f in unknown
                    ]
                },
            )
        if not changes:
            raise ValidationFailed("no fields to update", {"fields": []})
        permission = (
            Permission.TENANT_MANAGE_PLAN
            if set(changes) - SELF_SERVICE_FIELDS
            else Permission.TENANT_UPDATE_PROFILE
        )
        meta = self._preamble.begin(ctx, permission, tenant_id, "update_tenant", tenant_id)
        if tenant_id == SYSTEM_TENANT_ID and changes.get("status", "active") != "active":
            raise Forbidden("the system tenant cannot be suspended or deactivated")
        tenant = self._load_live(tenant_id)
        old_name = tenant.tenant_name
        updated = _every_problem_at_once(
            partial(tenant.update_profile, _only(changes, PROFILE_FIELDS), meta),
            partial(tenant.change_quotas, _only(changes, QUOTA_FIELDS), meta),
            partial(tenant.change_sign_in_settings, _only(changes, SIGN_IN_FIELDS), meta),
        )
        if "status" in changes:
            updated += self._change_status(tenant, changes["status"], meta)
        claims, releases = [], []
        if tenant.tenant_name != old_name:
            claims, releases = [name_claim(tenant.tenant_name)], [name_claim(old_name)]
        self._app.save_for(tenant_id, tenant, claims=claims, releases=releases)
        return TenantUpdate(tenant, sorted(updated))

    def deactivate(
        self, ctx: CommandContext, tenant_id: UUID, *, immediate: bool = False
    ) -> Tenant:
        """Soft delete with a grace period, or (`immediate`) purge at once."""
        action = "purge_tenant" if immediate else "deactivate_tenant"
        meta = self._preamble.begin(ctx, Permission.TENANT_DEACTIVATE, tenant_id, action, tenant_id)
        if tenant_id == SYSTEM_TENANT_ID:
            raise Forbidden("the system tenant cannot be deactivated")
        tenant = self._load_live(tenant_id)
        releases: list[Claim] = []
        if tenant.status is not TenantStatus.DEACTIVATED:
            tenant.deactivate(meta)
        if immediate:
            tenant.purge(meta)
            releases = [slug_claim(tenant.tenant_slug), name_claim(tenant.tenant_name)]
        self._app.save_for(tenant_id, tenant, releases=releases)
        if immediate and self._tenant_keys is not None:
            self._tenant_keys.destroy_tenant(tenant_id)
        return tenant

    def reactivate(self, ctx: CommandContext, tenant_id: UUID) -> Tenant:
        meta = self._preamble.begin(
            ctx, Permission.TENANT_REACTIVATE, tenant_id, "reactivate_tenant", tenant_id
        )
        tenant = self._load_live(tenant_id)
        tenant.reactivate(meta)
        self._app.save_for(tenant_id, tenant)
        return tenant

    def bootstrap_system_tenant(self) -> bool:
        """Create the system tenant's aggregate once; True when created now."""
        try:
            self._app.load(SYSTEM_TENANT_ID, SYSTEM_TENANT_ID, Tenant)
        except NotFound:
            pass
        else:
            return False
        meta = EventMeta(SYSTEM_TENANT_ID, SYSTEM_ACTOR, self._hash)
        tenant = Tenant.register(
            tenant_id=SYSTEM_TENANT_ID,
            name="System",
            slug=SYSTEM_TENANT_SLUG,
            email="admin@acgs2.local",
            meta=meta,
        )
        try:
            self._app.save_for(
                SYSTEM_TENANT_ID,
                tenant,
                claims=[slug_claim(tenant.tenant_slug), name_claim(tenant.tenant_name)],
            )
        except (TenantSlugTaken, TenantNameTaken):
            return False
        return True

    def _change_status(self, tenant: Tenant, status: object, meta: EventMeta) -> list[str]:
        try:
            target = TenantStatus(str(status))
        except ValueError:
            target = TenantStatus.PURGED
        if target is tenant.status:
            return []
        transitions = {
            TenantStatus.SUSPENDED: tenant.suspend,
            TenantStatus.ACTIVE: tenant.reactivate,
            TenantStatus.DEACTIVATED: tenant.deactivate,
        }
        if target not in transitions:
            raise ValidationFailed.field("status", "must be one of active, suspended, deactivated")
        transitions[target](meta)
        return ["status"]

    def _load_live(self, tenant_id: UUID) -> Tenant:
        tenant = self._app.load(tenant_id, tenant_id, Tenant)
        if tenant.status is TenantStatus.PURGED:
            raise NotFound("tenant not found", {"tenant_id": str(tenant_id)})
        return tenant


def _only(changes: dict[str, Any], names: frozenset[str]) -> dict[str, object]:
    return {k: v for k, v in changes.items() if k in names}


def _every_problem_at_once(*steps: Callable[[], list[str]]) -> list[str]:
    """Run every step (each validates its fields, then changes the aggregate); the fields they
    changed, or one `ValidationFailed` listing the bad fields of all steps (nothing is saved)."""
    updated: list[str] = []
    problems: list[dict[str, Any]] = []
    for step in steps:
        try:
            updated += step()
        except ValidationFailed as invalid:
            problems += invalid.details.get("fields", [])
    if problems:
        raise ValidationFailed.listing(problems)
    return updated
