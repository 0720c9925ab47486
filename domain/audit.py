"""An audit entry that is not the side effect of another change: a refused request, a token
issuance. Like every change it is an event, so the audit log can be rebuilt from the store."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from domain.events import EventMeta

CATEGORIES = ("authentication", "authorization", "governance", "integration", "migration", "admin")
RESULTS = ("success", "failure", "denied")


class AuditEntry(Aggregate):
    class Recorded(Aggregate.Created):
        category: str
        action: str
        result: str
        target_resource: str | None
        details: dict[str, Any]
        meta: dict[str, Any]

    @classmethod
    def record(
        cls,
        *,
        entry_id: UUID,
        category: str,
        action: str,
        result: str,
        target_resource: str | None,
        details: dict[str, Any],
        meta: EventMeta,
    ) -> AuditEntry:
        if category not in CATEGORIES or result not in RESULTS:
            msg = f"invalid audit category {category!r} or result {result!r}"
            raise ValueError(msg)
        return cls(
            id=entry_id,
            category=category,
            action=action,
            result=result,
            target_resource=target_resource,
            details=details,
            meta=meta.as_dict(),
        )

    @event(Recorded)
    def __init__(
        self,
        id: UUID,
        category: str,
        action: str,
        result: str,
        target_resource: str | None,
        details: dict[str, Any],
        meta: dict[str, Any],
    ) -> None:
        del id, meta
        self.category = category
        self.action = action
        self.result = result
        self.target_resource = target_resource
        self.details = details


# Audit retention (per tenant): how long its audit rows are kept, and whether a legal hold keeps
# them all. A change is an `AuditEntry` with this action, its details holding the new settings
# (`retention_days`, `legal_hold`, `legal_hold_reason`), so it is audited like any change and the
# read model of the settings is rebuilt from the log.
RETENTION_ACTION = "change_audit_retention"
DEFAULT_RETENTION_DAYS = 90
MAX_RETENTION_DAYS = 36500
MAX_HOLD_REASON = 500
