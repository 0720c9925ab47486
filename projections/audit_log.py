"""The audit-log projection: every event becomes one `tenant_audit_log` row.

The row is a pure function of the event (its id is the event id, its time the event time), so a
replay into an empty table gives identical rows. Purging a tenant deletes its audit rows; the
purge itself is recorded under the system tenant, where the platform's own audit lives.
"""

from __future__ import annotations

from typing import Any

from psycopg import AsyncConnection, Cursor
from psycopg.rows import DictRow
from psycopg.types.json import Jsonb

from domain.audit import AuditEntry
from domain.events import EventMeta, event_id, event_type
from domain.tenancy import SYSTEM_TENANT_ID
from domain.tenant.aggregate import Tenant

_INSERT = """
INSERT INTO tenant_audit_log (audit_id, tenant_id, event_type, event_category, actor_id,
    actor_type, target_resource, target_id, action, result, details, constitutional_hash,
    constitutional_validation_passed, timestamp)
VALUES (%(audit_id)s, %(tenant_id)s, %(event_type)s, %(event_category)s, %(actor_id)s,
    %(actor_type)s, %(target_resource)s, %(target_id)s, %(action)s, %(result)s, %(details)s,
    %(constitutional_hash)s, %(constitutional_validation_passed)s, %(timestamp)s)
ON CONFLICT DO NOTHING
"""
_ENVELOPE = frozenset(
    {"originator_id", "originator_version", "timestamp", "originator_topic", "meta", "id"}
)
_TENANT_ACTIONS = {
    Tenant.Created: "create_tenant",
    Tenant.ProfileUpdated: "update_tenant",
    Tenant.QuotasChanged: "change_tenant_quotas",
    Tenant.Suspended: "suspend_tenant",
    Tenant.Reactivated: "reactivate_tenant",
    Tenant.Deactivated: "deactivate_tenant",
    Tenant.Purged: "purge_tenant",
}


def payload(event: Any) -> dict[str, Any]:
    """The event's own fields, without the envelope and metadata."""
    return {k: v for k, v in vars(event).items() if k not in _ENVELOPE}


def audit_record(event: Any) -> dict[str, Any]:
    """The audit record an event becomes: a pure function of the event (also used by the
    Kafka relay for the `audit-trail` topic). `details` is a plain dict."""
    meta = EventMeta.from_dict(event.meta)
    record: dict[str, Any] = {
        "audit_id": event_id(event.originator_id, event.originator_version),
        "tenant_id": meta.tenant_id,
        "event_type": event_type(event),
        "actor_id": meta.actor.sub,
        "actor_type": meta.actor.actor_type,
        "target_id": str(event.originator_id),
        "result": "success",
        "constitutional_hash": meta.constitutional_hash,
        "constitutional_validation_passed": True,
        "timestamp": event.timestamp,
        "details": payload(event),
    }
    if isinstance(event, AuditEntry.Recorded):
        record.update(
            event_type=f"{event.category}.{event.action}",
            event_category=event.category,
            action=event.action,
            result=event.result,
            target_resource=event.target_resource,
            target_id=None,
            details=dict(event.details),
            constitutional_validation_passed=bool(
                event.details.get("constitutional_validation_passed", True)
            ),
        )
    elif isinstance(event, Tenant.Event):
        record.update(
            event_category="admin",
            action=_TENANT_ACTIONS.get(type(event), "tenant"),
            target_resource=f"tenant/{event.originator_id}",
        )
        if isinstance(event, Tenant.Purged):
            record["tenant_id"] = SYSTEM_TENANT_ID
    else:
        record.update(
            event_category="governance",
            action=event_type(event),
            target_resource=event_type(event).split(".")[0],
        )
    return record


class AuditLogProjection:
    name = "audit_log"
    tables = ("tenant_audit_log",)

    def apply(self, cur: Cursor[Any], event: Any) -> None:
        if isinstance(event, Tenant.Purged):
            cur.execute("DELETE FROM tenant_audit_log WHERE tenant_id = %s", [event.originator_id])
        record = audit_record(event)
        cur.execute(_INSERT, {**record, "details": Jsonb(record["details"])})


async def count_audit_records(conn: AsyncConnection[DictRow]) -> int:
    cur = await conn.execute("SELECT count(*) AS n FROM tenant_audit_log")
    row = await cur.fetchone()
    return int(row["n"]) if row else 0
