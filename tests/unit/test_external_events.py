"""An event from another system becomes one audit entry of its tenant: its record is checked
field by field, a redelivered event writes nothing, a purged tenant takes none."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any
from uuid import UUID, uuid4

import pytest

from commands.application import GovernanceApplication
from commands.external_events import ExternalEvent, audit_entry_id, record_external_event
from domain.audit import AuditEntry
from domain.constitution import DEFAULT_CONSTITUTIONAL_HASH
from domain.errors import ValidationFailed
from domain.events import EventMeta
from domain.tenant.aggregate import Tenant
from tests.unit.kafka.test_schemas import META

HASH = DEFAULT_CONSTITUTIONAL_HASH


def record(tenant: UUID, **changes: Any) -> dict[str, Any]:
    return {
        "event_id": str(uuid4()),
        "event_type": "ticket.closed",
        "source": "servicedesk",
        "tenant_id": str(tenant),
        "occurred_at": datetime(2026, 1, 2, tzinfo=UTC),
        "actor": {"sub": "servicedesk-bot", "roles": ["EXECUTIVE"], "auth_method": "api_key"},
        "constitutional_hash": HASH,
        "trace_parent": None,
        "payload": json.dumps({"ticket": 7}),
        **changes,
    }


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"payload": "[1]"}, "payload: must be a JSON object"),
        ({"payload": "{"}, "invalid external event: "),
        ({"tenant_id": "acme"}, "invalid external event: "),
        ({"event_type": ""}, "event_type: must be 1 to 100 characters"),
        ({"event_type": "x" * 101}, "event_type: must be 1 to 100 characters"),
        ({"source": ""}, "source: must not be empty"),
        ({"occurred_at": "2026-01-02"}, "occurred_at: must be a timestamp"),
    ],
)
def test_a_record_that_does_not_fit_is_refused(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationFailed) as refused:
        ExternalEvent.from_record(record(uuid4(), **changes))
    assert str(refused.value).startswith(message)


@pytest.fixture
def app() -> GovernanceApplication:
    return GovernanceApplication(env={"PERSISTENCE_MODULE": "eventsourcing.popo"})


def tenant_of(app: GovernanceApplication) -> Tenant:
    tenant_id = uuid4()
    meta = EventMeta(tenant_id, META.actor, HASH, None)
    tenant = Tenant.register(
        tenant_id=tenant_id, name="Acme", slug=f"a-{tenant_id.hex[:8]}", email="a@b.c", meta=meta
    )
    app.save_for(tenant_id, tenant)
    return tenant


def test_a_redelivered_event_is_recorded_once(app: GovernanceApplication) -> None:
    tenant = tenant_of(app)
    event = ExternalEvent.from_record(record(tenant.id))
    assert record_external_event(app, HASH, event) is True
    assert record_external_event(app, HASH, event) is False
    entry = app.load(tenant.id, audit_entry_id(event.event_id), AuditEntry)
    assert entry.version == 1


def test_a_purged_tenant_takes_no_events(app: GovernanceApplication) -> None:
    tenant = tenant_of(app)
    meta = EventMeta(tenant.id, META.actor, HASH, None)
    tenant.deactivate(meta)
    tenant.purge(meta)
    app.save_for(tenant.id, tenant)
    event = ExternalEvent.from_record(record(tenant.id))
    with pytest.raises(ValidationFailed, match="tenant_id: the tenant has been purged"):
        record_external_event(app, HASH, event)
