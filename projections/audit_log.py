"""The audit-log projection: every event becomes one `tenant_audit_log` row.

The row is a pure function of the event (its id is the event id, its time the event time), so a
replay into an empty table gives identical rows. Purging a tenant deletes its audit rows; the
purge itself is recorded under the system tenant, where the platform's own audit lives.

Each row joins its tenant's hash chain (domain.audit_chain) in log order: its number and hash
follow the tenant's head in `audit_chain_heads`, moved in the same transaction. An audit entry
whose action is `RETENTION_ACTION` also keeps `audit_settings` (retention days, legal hold).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any
from uuid import UUID

from psycopg import Cursor
from psycopg.types.json import Jsonb

from domain.audit import RETENTION_ACTION, AuditEntry
from domain.audit_chain import GENESIS, row_hash
from domain.events import ENVELOPE_FIELDS, event_id, event_type, event_type_of
from domain.integration.aggregate import Integration
from domain.migration.job import MigrationJob
from domain.tenancy import SYSTEM_TENANT_ID
from domain.tenant.aggregate import Tenant
from domain.webhooks.aggregate import Webhook

# The row and the moved chain head in one statement: the head moves only if the row was new.
_INSERT = """
WITH row AS (
INSERT INTO tenant_audit_log (audit_id, tenant_id, event_type, event_category, actor_id,
    actor_type, target_resource, target_id, action, result, details, constitutional_hash,
    constitutional_validation_passed, timestamp, chain_seq, prev_hash, row_hash)
VALUES (%(audit_id)s, %(tenant_id)s, %(event_type)s, %(event_category)s, %(actor_id)s,
    %(actor_type)s, %(target_resource)s, %(target_id)s, %(action)s, %(result)s, %(details)s,
    %(constitutional_hash)s, %(constitutional_validation_passed)s, %(timestamp)s,
    %(chain_seq)s, %(prev_hash)s, %(row_hash)s)
ON CONFLICT DO NOTHING
RETURNING tenant_id, chain_seq, row_hash
)
INSERT INTO audit_chain_heads (tenant_id, seq, hash)
SELECT tenant_id, chain_seq, row_hash FROM row
ON CONFLICT (tenant_id) DO UPDATE SET seq = EXCLUDED.seq, hash = EXCLUDED.hash, updated_at = now()
"""
_HEAD = "SELECT seq, hash FROM audit_chain_heads WHERE tenant_id = %s"
_SETTINGS = """
INSERT INTO audit_settings (tenant_id, retention_days, legal_hold, legal_hold_reason, updated_by,
    updated_at)
VALUES (%(tenant_id)s, %(retention_days)s, %(legal_hold)s, %(legal_hold_reason)s,
    %(updated_by)s, %(at)s)
ON CONFLICT (tenant_id) DO UPDATE SET retention_days = EXCLUDED.retention_days,
    legal_hold = EXCLUDED.legal_hold, legal_hold_reason = EXCLUDED.legal_hold_reason,
    updated_by = EXCLUDED.updated_by, updated_at = EXCLUDED.updated_at
"""
_TENANT_ACTIONS = {
    event_type_of(Tenant.Created): "create_tenant",
    event_type_of(Tenant.ProfileUpdated): "update_tenant",
    event_type_of(Tenant.QuotasChanged): "change_tenant_quotas",
    event_type_of(Tenant.SignInSettingsChanged): "change_tenant_sign_in_settings",
    event_type_of(Tenant.Suspended): "suspend_tenant",
    event_type_of(Tenant.Reactivated): "reactivate_tenant",
    event_type_of(Tenant.Deactivated): "deactivate_tenant",
    event_type_of(Tenant.Purged): "purge_tenant",
}
_TENANT_PREFIX = event_type_of(Tenant.Event).split(".")[0] + "."
_INTEGRATION_PREFIX = event_type_of(Integration.Event).split(".")[0] + "."
_MIGRATION_JOB_PREFIX = event_type_of(MigrationJob.Event).split(".")[0] + "."
_INTEGRATION_ACTIONS = {
    event_type_of(Integration.Created): "create_integration",
    event_type_of(Integration.Updated): "update_integration",
    event_type_of(Integration.HealthChanged): "integration_health_changed",
    event_type_of(Integration.Archived): "delete_integration",
    event_type_of(Integration.SecretsShredded): "shred_integration_secrets",
}
_WEBHOOK_PREFIX = event_type_of(Webhook.Event).split(".")[0] + "."
_WEBHOOK_ACTIONS = {
    event_type_of(Webhook.Registered): "create_webhook",
    event_type_of(Webhook.Updated): "update_webhook",
    event_type_of(Webhook.Disabled): "disable_webhook",
    event_type_of(Webhook.Deleted): "delete_webhook",
}
_JOB_FAILED = event_type_of(MigrationJob.Failed)
_RECORDED = event_type_of(AuditEntry.Recorded)
_PURGED = event_type_of(Tenant.Purged)


def payload(event: Any) -> dict[str, Any]:
    """The event's own fields, without the envelope and metadata."""
    return {k: v for k, v in vars(event).items() if k not in ENVELOPE_FIELDS}


def audit_record(event: Any) -> dict[str, Any]:
    """The audit record a domain event becomes (see `audit_record_of`)."""
    return audit_record_of(
        audit_id=event_id(event.originator_id, event.originator_version),
        event_type=event_type(event),
        aggregate_id=str(event.originator_id),
        timestamp=event.timestamp,
        meta=event.meta,
        fields=vars(event),
    )


def audit_record_of(
    *,
    audit_id: UUID | str,
    event_type: str,
    aggregate_id: str,
    timestamp: datetime,
    meta: Mapping[str, Any],
    fields: Mapping[str, Any],
) -> dict[str, Any]:
    """The audit record of an event, from its parts (`fields`: its attributes, envelope ones
    ignored): a pure function of the event, so a replay gives identical rows. The Kafka relay
    calls it with the parts it reads straight from the stored JSON for the `audit-trail` topic.
    `details` is a plain dict."""
    actor = meta["actor"]
    details = {k: v for k, v in fields.items() if k not in ENVELOPE_FIELDS}
    record: dict[str, Any] = {
        "audit_id": audit_id,
        "tenant_id": meta["tenant_id"],
        "event_type": event_type,
        "actor_id": actor["sub"],
        "actor_type": actor.get("actor_type", "user"),
        "target_id": aggregate_id,
        "result": "success",
        "constitutional_hash": meta["constitutional_hash"],
        "constitutional_validation_passed": True,
        "timestamp": timestamp,
        "details": details,
    }
    if event_type == _RECORDED:
        entry_details = fields["details"]
        record.update(
            event_type=f"{fields['category']}.{fields['action']}",
            event_category=fields["category"],
            action=fields["action"],
            result=fields["result"],
            target_resource=fields["target_resource"],
            target_id=None,
            details=dict(entry_details),
            constitutional_validation_passed=bool(
                entry_details.get("constitutional_validation_passed", True)
            ),
        )
    elif event_type.startswith(_TENANT_PREFIX):
        record.update(
            event_category="admin",
            action=_TENANT_ACTIONS.get(event_type, "tenant"),
            target_resource=f"tenant/{aggregate_id}",
        )
        if event_type == _PURGED:
            record["tenant_id"] = SYSTEM_TENANT_ID
    elif event_type.startswith(_INTEGRATION_PREFIX):
        record.update(
            event_category="integration",
            action=_INTEGRATION_ACTIONS.get(event_type, event_type),
            target_resource=f"integration/{aggregate_id}",
        )
    elif event_type.startswith(_MIGRATION_JOB_PREFIX):
        record.update(
            event_category="migration",
            action=event_type,
            result="failure" if event_type == _JOB_FAILED else "success",
            target_resource=f"migration_job/{aggregate_id}",
        )
    elif event_type.startswith(_WEBHOOK_PREFIX):
        record.update(
            event_category="integration",
            action=_WEBHOOK_ACTIONS.get(event_type, event_type),
            target_resource=f"webhook/{aggregate_id}",
        )
    else:
        record.update(
            event_category="governance",
            action=event_type,
            target_resource=event_type.split(".", maxsplit=1)[0],
        )
    return record


def chained(cur: Cursor[Any], record: dict[str, Any]) -> dict[str, Any]:
    """`record` with its place in its tenant's chain: number, previous hash, own hash."""
    head = cur.execute(_HEAD, [record["tenant_id"]], prepare=True).fetchone()
    seq, prev = (int(head[0]), str(head[1])) if head else (0, GENESIS)
    record = {**record, "chain_seq": seq + 1, "prev_hash": prev}
    record["row_hash"] = row_hash(prev, record)
    return record


def insert_row(cur: Cursor[Any], record: dict[str, Any]) -> dict[str, Any]:
    """Write one audit record as the next row of its tenant's chain; returns the chained row."""
    row = chained(cur, record)
    cur.execute(_INSERT, {**row, "details": Jsonb(row["details"])}, prepare=True)
    return row


class AuditLogProjection:
    name = "audit_log"
    tables = ("tenant_audit_log", "audit_chain_heads", "audit_settings")

    def apply(self, cur: Cursor[Any], event: Any) -> None:
        if isinstance(event, Tenant.Purged):
            for table in self.tables:
                cur.execute(f"DELETE FROM {table} WHERE tenant_id = %s", [event.originator_id])  # noqa: S608 - table names from a fixed tuple; tenant id bound  # nosec B608
        elif (
            isinstance(event, AuditEntry.Recorded)
            and event.action == RETENTION_ACTION
            and event.result == "success"  # a refused change is audited with the same action
        ):
            settings = event.details
            cur.execute(
                _SETTINGS,
                {
                    "tenant_id": event.meta["tenant_id"],
                    "retention_days": settings["retention_days"],
                    "legal_hold": settings["legal_hold"],
                    "legal_hold_reason": settings.get("legal_hold_reason"),
                    "updated_by": event.meta["actor"]["sub"],
                    "at": event.timestamp,
                },
            )
        insert_row(cur, audit_record(event))
