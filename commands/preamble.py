"""The preamble every state-changing command runs first: authorize the
principal, verify the constitutional hash, and build the events' metadata. A refusal is itself
audited, in the principal's own tenant (never the target's), and nothing else is written."""

from __future__ import annotations

from uuid import UUID, uuid4

from commands.application import GovernanceApplication
from commands.authorization import Permission, authorize
from commands.constitution import verify_constitutional_hash
from commands.context import CommandContext
from domain.audit import AuditEntry
from domain.errors import (
    ConstitutionalHashMismatch,
    ConstitutionalHashRequired,
    DomainError,
    Forbidden,
    NotFound,
)
from domain.events import EventMeta


class CommandPreamble:
    def __init__(self, app: GovernanceApplication, constitutional_hash: str) -> None:
        self._app = app
        self._hash = constitutional_hash

    def begin(
        self,
        ctx: CommandContext,
        permission: Permission,
        tenant_id: UUID | None,
        action: str,
        subject: UUID,
        *,
        refusal_category: str | None = None,
    ) -> EventMeta:
        """Authorize and verify the hash; return the metadata of the events about `subject`.

        A refusal is audited under `refusal_category`, or by default as `authorization` (a
        missing permission) or `governance` (a missing or wrong constitutional hash)."""
        try:
            authorize(ctx.principal, permission, tenant_id)
            verify_constitutional_hash(ctx.constitutional_hash, self._hash)
        except (
            Forbidden,
            NotFound,  # another tenant's resource: refused as if absent, audited all the same
            ConstitutionalHashRequired,
            ConstitutionalHashMismatch,
        ) as refusal:
            self._audit_refusal(ctx, action, tenant_id, refusal, refusal_category)
            raise
        return ctx.meta(subject, self._hash)

    def _audit_refusal(
        self,
        ctx: CommandContext,
        action: str,
        tenant_id: UUID | None,
        refusal: DomainError,
        category: str | None,
    ) -> None:
        own = ctx.principal.tenant_id
        hash_refused = isinstance(refusal, ConstitutionalHashRequired | ConstitutionalHashMismatch)
        entry = AuditEntry.record(
            entry_id=uuid4(),
            category=category or ("governance" if hash_refused else "authorization"),
            action=action,
            result="denied",
            target_resource=f"tenant/{tenant_id}" if tenant_id else "tenants",
            details={"code": refusal.code, "constitutional_validation_passed": not hash_refused},
            meta=ctx.meta(own, self._hash),
        )
        self._app.save_for(own, entry)
