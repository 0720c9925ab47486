"""The columns a sync builds in bulk (`ColumnMaker`) are the ones built from each event's sink
record (`chunk_of`, the reference), value for value, on the same events of a real log: audit
entries (decoded on their own path), other plain events (tenant and integration events), events
only the mapper reads, alerts of every kind, repeated failed sign-ins, a new tenant's own slug,
unicode, a NULL actor and target, numbers JSON writes in several ways, and an older release's
narrower tables."""

from __future__ import annotations

import itertools
import uuid
from typing import Any, cast

import pytest

from api.bootstrap import System
from commands.integrations import CreateIntegration
from commands.tenants import CreateTenant
from domain.audit import AuditEntry
from domain.events import Actor, EventMeta
from domain.maci import MaciRole
from domain.warehouse import AUDIT_LOG, GOVERNANCE_EVENTS, TABLES, without
from infra.postgres.follower import LogFollower
from infra.postgres.sink_store import SinkStore
from projections.sinks.records import RecordMaker
from projections.sinks.warehouse import chunk_of
from projections.sinks.warehouse_columns import ColumnMaker
from tests.integration.kafka.support import PLATFORM

pytestmark = [pytest.mark.postgres]


def _entry(meta: EventMeta, category: str, action: str, result: str, **details: Any) -> Any:
    return AuditEntry.record(
        entry_id=uuid.uuid4(),
        category=category,
        action=action,
        result=result,
        target_resource=f"{action}/1",
        details=details,
        meta=meta,
    )


def _record_variety(system: System, unique: str) -> uuid.UUID:
    tenant = system.tenants.create(
        PLATFORM, CreateTenant(f"Cols {unique}", f"cols-{unique}", "a@cols.example.com")
    ).id
    meta = EventMeta(
        tenant, Actor("alice", (MaciRole.MONITOR,)), system.settings.constitutional_hash
    )
    entries = [
        _entry(meta, "governance", "policy_decision", "success", rule="r1"),
        _entry(meta, "governance", "policy_decision", "denied", rule="r2"),
        _entry(meta, "governance", "policy_gap", "success", severity="critical"),
        _entry(meta, "governance", "shadow_compare", "success", severity="critical"),
        _entry(meta, "admin", "change", "failure", constitutional_validation_passed=False),
        _entry(meta, "authorization", "read", "denied", note="ünïcode ✓ \u007f"),
        _entry(meta, "integration", "sync", "success", nested={"a": [1, 2.5, None, True]}),
    ]
    entries += [  # the fifth and sixth raise repeated_failed_sign_ins
        _entry(meta, "authentication", "login", "failure", username="Mallory") for _ in range(6)
    ]
    entries.append(_entry(meta, "authentication", "login", "success", username="bob"))
    entries += [  # odd values: each must give the same columns on every path
        _entry(meta, "governance", "politique_décision", "denied", 名前="値", emoji="🙂\n\t\"'"),
        _entry(meta, "governance", "policy_gap", "success", severity=5, big=2**70, tiny=1e-05),
        _entry(meta, "governance", "shadow_compare", "success", severity=None, huge=1e16),
        _entry(meta, "admin", "change", "success", constitutional_validation_passed=0),
        _entry(meta, "admin", "change", "success", constitutional_validation_passed="no"),
        _entry(meta, "admin", "change", "success", constitutional_validation_passed=None),
        _entry(meta, "authorization", "read", "failure"),
    ]
    nobody = EventMeta(tenant, Actor(cast("str", None)), system.settings.constitutional_hash)
    entries.append(_entry(nobody, "governance", "policy_decision", "success", rule="r3"))
    untargeted = _entry(meta, "migration", "import", "success", rows=[1, 2.0, -0.0])
    untargeted_entry = AuditEntry.record(
        entry_id=uuid.uuid4(),
        category="migration",
        action="import ünïcode",
        result="success",
        target_resource=None,
        details={},
        meta=meta,
    )
    entries += [untargeted, untargeted_entry]
    system.app.save_for(tenant, *entries)
    system.tenants.update(PLATFORM, tenant, {"max_storage_gb": 77})
    assert system.integrations is not None
    system.integrations.create(
        PLATFORM,
        tenant,
        CreateIntegration("data_warehouse", "Cols", {"provider": "duckdb"}, enabled=False),
    )
    return tenant


def _upcast(row: Any, position: int) -> Any:
    """The row as an event stored by an older class version would be: a state only the
    application's mapper reads (it carries `class_version`), at a later position."""
    state = bytes(row[4]).replace(b"{", b'{"class_version":1,', 1)
    return (position, *row[1:4], state, *row[5:])


def _stored(row: Any) -> Any:
    from eventsourcing.persistence import StoredEvent  # noqa: PLC0415

    return StoredEvent(row[1], row[2], row[3], bytes(row[4]))


def test_bulk_columns_equal_the_columns_made_through_sink_records(
    system: System, unique: str
) -> None:
    log = LogFollower(system.projector_conninfo, "columns_test", track_position=False)
    store = SinkStore(system.projector_conninfo)
    try:
        start = log.head()
        _record_variety(system, unique)
        rows = log.read(start, 10_000)
        rows += [_upcast(row, rows[-1][0] + n) for n, row in enumerate(rows[:3], start=1)]
        # a hash that is a number (str() to the reference) is refused by the bulk decoder: a
        # chunk with it is decoded entry by entry, and that entry goes the general way
        entry = next(r for r in rows if b'"category":"governance"' in bytes(r[4]))
        hash_ = system.settings.constitutional_hash.encode()
        odd = bytes(entry[4]).replace(b'"' + hash_ + b'"', b"5")
        assert odd != bytes(entry[4])
        odd_row = (rows[-1][0] + 1, uuid.uuid4(), *entry[2:4], odd, *entry[5:])
        for chunk, tables in itertools.product(
            (rows, [*rows, odd_row]),
            (TABLES, (without(GOVERNANCE_EVENTS, "payload"), without(AUDIT_LOG, "alert"))),
        ):
            reference = RecordMaker(system.app.mapper, store.tenant_slug)
            bulk = RecordMaker(system.app.mapper, store.tenant_slug)
            expected = chunk_of(chunk, reference(chunk)).arrow(tables)
            made = ColumnMaker(bulk)(chunk, tables)
            for table in tables:
                assert made[table.name].schema == expected[table.name].schema, table.name
                assert made[table.name].to_pylist() == expected[table.name].to_pylist(), table.name
        plain = [reference.plain_parts(r[3], bytes(r[4])) is not None for r in rows]
        assert any(plain), "no event took the bulk path"
        assert not all(plain), "no event was read through the mapper"
        columns = ColumnMaker(RecordMaker(system.app.mapper, store.tenant_slug))
        taken = {r[0] for r in columns._entries(rows)[0]}
        entries = [r[0] in taken for r in rows]
        assert sum(entries) >= 15, "audit entries did not take their own path"
        assert any(p and not e for p, e in zip(plain, entries, strict=True)), "no other plain"
        kinds = {system.app.mapper.to_domain_event(_stored(r)).__class__.__qualname__ for r in rows}
        assert {"Tenant.Created", "Tenant.QuotasChanged", "Integration.Created"} <= kinds
        audit = ColumnMaker(RecordMaker(system.app.mapper, store.tenant_slug))(rows, TABLES)
        alerts = audit[AUDIT_LOG.name].column("alert").to_pylist()
        assert alerts.count("repeated_failed_sign_ins") == 2
        for alert in ("policy_decision_denied", "policy_gap_critical"):
            assert alert in alerts
        for alert in ("shadow_disagreement_critical", "constitutional_hash_refused"):
            assert alert in alerts
        slugs = set(audit[AUDIT_LOG.name].column("tenant_slug").to_pylist())
        assert f"cols-{unique}" in slugs
    finally:
        log.close()
        store.close()
