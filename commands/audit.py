"""Audit-log commands: the audit entries of reading the audit log (every export, every
cross-tenant query) and of its retention (a change of retention or legal hold, each purge).

Reads are authorized here with the permission table; a change of retention also runs the shared
preamble (constitutional hash, audited refusal). Every entry is an `AuditEntry` event, so the audit
log records its own use and can be rebuilt from the store.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from uuid import UUID, uuid4

from commands.application import GovernanceApplication
from commands.authorization import Permission, authorize
from commands.context import CommandContext, Principal
from commands.preamble import CommandPreamble
from domain.audit import (
    DEFAULT_RETENTION_DAYS,
    MAX_HOLD_REASON,
    MAX_RETENTION_DAYS,
    RETENTION_ACTION,
    AuditEntry,
)
from domain.errors import ValidationFailed
from domain.events import SYSTEM_ACTOR, EventMeta
from domain.tenancy import SYSTEM_TENANT_ID

EXPORT_ACTION = "export_audit_log"
CROSS_TENANT_QUERY_ACTION = "query_audit_log_across_tenants"
PURGE_ACTION = "purge_audit_log"


@dataclass(frozen=True)
class RetentionSettings:
    retention_days: int = DEFAULT_RETENTION_DAYS
    legal_hold: bool = False
    legal_hold_reason: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "retention_days": self.retention_days,
            "legal_hold": self.legal_hold,
            "legal_hold_reason": self.legal_hold_reason,
        }


def validated_retention(current: RetentionSettings, changes: dict[str, Any]) -> RetentionSettings:
    """`current` with `changes` applied; every bad field is listed at once (VALIDATION_ERROR)."""
    errors = []
    unknown = sorted(set(changes) - {"retention_days", "legal_hold", "legal_hold_reason"})
    errors += [{"field": f, "message": "unknown field"} for f in unknown]
    days = changes.get("retention_days", current.retention_days)
    if isinstance(days, bool) or not isinstance(days, int) or not 1 <= days <= MAX_RETENTION_DAYS:
        errors.append(
            {"field": "retention_days", "message": f"must be an integer 1..{MAX_RETENTION_DAYS}"}
        )
    hold = changes.get("legal_hold", current.legal_hold)
    if not isinstance(hold, bool):
        errors.append({"field": "legal_hold", "message": "must be true or false"})
    reason = changes.get("legal_hold_reason", current.legal_hold_reason)
    if reason is not None and (
        not isinstance(reason, str)
        or len(reason) > MAX_HOLD_REASON
        or any(ord(c) < 32 or 0xD800 <= ord(c) <= 0xDFFF for c in reason)
    ):
        errors.append(
            {
                "field": "legal_hold_reason",
                "message": f"text of at most {MAX_HOLD_REASON} characters, no control characters",
            }
        )
    if not changes:
        errors.append({"field": "body", "message": "no setting to change"})
    if errors:
        names = ", ".join(e["field"] for e in errors)
        raise ValidationFailed(f"invalid fields: {names}", {"fields": errors})
    return RetentionSettings(days, hold, reason if hold else None)


class AuditCommands:
    def __init__(self, app: GovernanceApplication, constitutional_hash: str) -> None:
        self._app = app
        self._hash = constitutional_hash
        self._preamble = CommandPreamble(app, constitutional_hash)

    def record_export(
        self, principal: Principal, tenant_id: UUID, export_id: str, details: dict[str, Any]
    ) -> None:
        """Authorize an export of `tenant_id`'s audit log and audit it (in that tenant)."""
        authorize(principal, Permission.AUDIT_EXPORT, tenant_id)
        self._record(
            principal,
            tenant_id,
            EXPORT_ACTION,
            f"tenant/{tenant_id}/audit-log/exports/{export_id}",
            {"export_id": export_id, **details},
        )

    def record_cross_tenant_query(self, principal: Principal, filters: dict[str, Any]) -> None:
        """Authorize a query across tenants and audit it (under the system tenant)."""
        authorize(principal, Permission.AUDIT_READ_ALL)
        self._record(principal, SYSTEM_TENANT_ID, CROSS_TENANT_QUERY_ACTION, "audit-log", filters)

    def change_retention(
        self,
        ctx: CommandContext,
        tenant_id: UUID,
        current: RetentionSettings,
        changes: dict[str, Any],
    ) -> RetentionSettings:
        """Platform principals set a tenant's retention days and legal hold."""
        meta = self._preamble.begin(
            ctx, Permission.AUDIT_RETENTION, tenant_id, RETENTION_ACTION, tenant_id
        )
        settings = validated_retention(current, changes)
        entry = AuditEntry.record(
            entry_id=uuid4(),
            category="admin",
            action=RETENTION_ACTION,
            result="success",
            target_resource=f"tenant/{tenant_id}/audit-log",
            details=settings.as_dict(),
            meta=meta,
        )
        self._app.save_for(tenant_id, entry)
        return settings

    def record_purge(self, tenant_id: UUID, details: dict[str, Any]) -> None:
        """Audit a retention purge (by the system) in the purged tenant's own log."""
        entry = AuditEntry.record(
            entry_id=uuid4(),
            category="admin",
            action=PURGE_ACTION,
            result="success",
            target_resource=f"tenant/{tenant_id}/audit-log",
            details=details,
            meta=EventMeta(tenant_id, SYSTEM_ACTOR, self._hash),
        )
        self._app.save_for(tenant_id, entry)

    def _record(
        self,
        principal: Principal,
        tenant_id: UUID,
        action: str,
        target: str,
        details: dict[str, Any],
    ) -> None:
        entry = AuditEntry.record(
            entry_id=uuid4(),
            category="admin",
            action=action,
            result="success",
            target_resource=target,
            details=details,
            meta=EventMeta(tenant_id, principal.actor(), self._hash),
        )
        self._app.save_for(tenant_id, entry)
