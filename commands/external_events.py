"""Recording an event from another system (the `external-events` topic) as an audit entry of
category `integration` in its tenant's audit log.

The entry's id is derived from the external event's id, so recording the same event twice
writes nothing the second time: a redelivered message can never be applied twice.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import NAMESPACE_URL, UUID, uuid5

from commands.application import GovernanceApplication
from commands.constitution import verify_constitutional_hash
from domain.audit import AuditEntry
from domain.errors import ConcurrentModification, ValidationFailed
from domain.events import Actor, EventMeta
from domain.tenant.aggregate import Tenant
from domain.tenant.values import TenantStatus

_ENTRY_NAMESPACE = uuid5(NAMESPACE_URL, "urn:acgs:external-event")
MAX_EVENT_TYPE_LENGTH = 100


@dataclass(frozen=True)
class ExternalEvent:
    event_id: UUID
    event_type: str
    source: str
    tenant_id: UUID
    occurred_at: datetime
    actor: Actor
    constitutional_hash: str
    trace_parent: str | None
    payload: dict[str, Any]

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> ExternalEvent:
        """Validate a decoded `acgs.events.external.ExternalEvent` record."""
        try:
            payload = json.loads(record["payload"])
            event = cls(
                event_id=UUID(str(record["event_id"])),
                event_type=str(record["event_type"]),
                source=str(record["source"]),
                tenant_id=UUID(str(record["tenant_id"])),
                occurred_at=record["occurred_at"],
                actor=Actor.from_dict(dict(record["actor"])),
                constitutional_hash=str(record["constitutional_hash"]),
                trace_parent=record.get("trace_parent"),
                payload=payload,
            )
        except (KeyError, ValueError, TypeError) as exc:
            msg = f"invalid external event: {exc}"
            raise ValidationFailed(msg) from None
        if not isinstance(payload, dict):
            raise ValidationFailed.field("payload", "must be a JSON object")
        if not 0 < len(event.event_type) <= MAX_EVENT_TYPE_LENGTH:
            raise ValidationFailed.field("event_type", "must be 1 to 100 characters")
        if not event.source:
            raise ValidationFailed.field("source", "must not be empty")
        if not isinstance(event.occurred_at, datetime):
            raise ValidationFailed.field("occurred_at", "must be a timestamp")
        return event


def audit_entry_id(external_event_id: UUID) -> UUID:
    return uuid5(_ENTRY_NAMESPACE, str(external_event_id))


def record_external_event(
    app: GovernanceApplication, constitutional_hash: str, event: ExternalEvent
) -> bool:
    """Record `event` in its tenant's audit log; False when it had been recorded already.

    Raises ConstitutionalHashMismatch for an event made under another constitution and NotFound
    for an unknown or purged tenant.
    """
    verify_constitutional_hash(event.constitutional_hash, constitutional_hash)
    tenant = app.load(event.tenant_id, event.tenant_id, Tenant)
    if tenant.status is TenantStatus.PURGED:
        raise ValidationFailed.field("tenant_id", "the tenant has been purged")
    entry = AuditEntry.record(
        entry_id=audit_entry_id(event.event_id),
        category="integration",
        action=event.event_type,
        result="success",
        target_resource=f"external/{event.source}",
        details={
            "external_event_id": str(event.event_id),
            "source": event.source,
            "occurred_at": event.occurred_at.isoformat(),
            "payload": event.payload,
        },
        meta=EventMeta(event.tenant_id, event.actor, constitutional_hash, event.trace_parent),
    )
    try:
        app.save_for(event.tenant_id, entry)
    except ConcurrentModification:
        return False
    return True
