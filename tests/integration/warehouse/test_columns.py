"""The columns a sync builds in bulk (`ColumnMaker`) are the ones built from each event's sink
record (`chunk_of`, the reference), value for value, on the same events of a real log: audit
entries (decoded on their own path), other plain events (tenant and integration events), events
only the mapper reads, alerts of every kind, repeated failed sign-ins, a new tenant's own slug,
unicode, a NULL actor and target, numbers JSON writes in several ways, and an older release's
narrower tables. The sync's packed read of the log gives the columns of the log's rows, in log
order, and which rows are in its scope."""

from __future__ import annotations

import itertools
import uuid
from array import array
from dataclasses import replace
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
from projections.sinks.warehouse_columns import ColumnMaker, LogColumns
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
        _entry(meta, "governance", "policy_decision", "success", id="ab3e-5", text="x: 1e-5 [2e+3"),
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
        # an entry whose details hold a second tagged value (a UUID, as the transcoder writes
        # it): not for the bulk path, which finds it among the chunk's joined states
        tagged = bytes(entry[4]).replace(
            b'"details":{',
            b'"details":{"who":{"_type_":"uuid_hex","_data_":"%s"},' % (uuid.uuid4().hex.encode()),
            1,
        )
        assert tagged.count(b'"_type_"') == 2
        rows.append((rows[-1][0] + 1, uuid.uuid4(), *entry[2:4], tagged, *entry[5:]))
        odd_row = (rows[-1][0] + 1, *odd_row[1:])
        entries = [r for r in rows if r[3].endswith(":AuditEntry.Recorded")]
        others = [r for r in rows if r not in entries]
        assert entries
        assert others
        for chunk, tables in itertools.product(
            (rows, [*rows, odd_row], entries, others, []),
            (TABLES, (without(GOVERNANCE_EVENTS, "payload"), without(AUDIT_LOG, "alert"))),
        ):
            reference = RecordMaker(system.app.mapper, store.tenant_slug)
            bulk = RecordMaker(system.app.mapper, store.tenant_slug)
            expected = chunk_of(chunk, reference(chunk)).arrow(tables)
            made = ColumnMaker(bulk)(LogColumns.of_rows(chunk), tables)
            for table in tables:
                assert made[table.name].schema == expected[table.name].schema, table.name
                assert made[table.name].to_pylist() == expected[table.name].to_pylist(), table.name
        plain = [reference.plain_parts(r[3], bytes(r[4])) is not None for r in rows]
        assert any(plain), "no event took the bulk path"
        assert not all(plain), "no event was read through the mapper"
        columns = ColumnMaker(RecordMaker(system.app.mapper, store.tenant_slug))
        taken = set(columns._entries(LogColumns.of_rows(rows))[0].positions.to_pylist())
        entries = [r[0] in taken for r in rows]
        assert sum(entries) >= 15, "audit entries did not take their own path"
        assert any(p and not e for p, e in zip(plain, entries, strict=True)), "no other plain"
        kinds = {system.app.mapper.to_domain_event(_stored(r)).__class__.__qualname__ for r in rows}
        assert {"Tenant.Created", "Tenant.QuotasChanged", "Integration.Created"} <= kinds
        audit = ColumnMaker(RecordMaker(system.app.mapper, store.tenant_slug))(
            LogColumns.of_rows(rows), TABLES
        )
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


def _same(a: LogColumns, b: LogColumns) -> None:
    for name in ("positions", "originators", "versions", "topics", "states", "recorded"):
        assert getattr(a, name).to_pylist() == getattr(b, name).to_pylist(), name


def test_the_packed_read_gives_the_columns_of_the_logs_rows_in_order_and_in_scope(
    system: System, unique: str
) -> None:
    log = LogFollower(system.projector_conninfo, "columns_test", track_position=False)
    try:
        start = log.head()
        tenant = _record_variety(system, unique)
        head = log.head()
        rows = log.read(start, 10_000)
        packed = log.read_packed(start, 10_000, head)
        assert (packed.count, packed.last) == (len(rows), rows[-1][0])
        columns, scoped = LogColumns.of_packed(packed)
        assert scoped is None
        _same(columns, LogColumns.of_rows(rows))
        assert [r[:5] for r in columns.rows()] == [(*r[:4], bytes(r[4])) for r in rows]
        part = log.read_packed(start, 5, rows[2][0], tenant)  # up to the third row
        columns, scoped = LogColumns.of_packed(part)
        _same(columns, LogColumns.of_rows(rows[:3]))
        assert scoped is not None
        assert scoped.to_pylist() == [r[5] == tenant for r in rows[:3]]
        empty = log.read_packed(head, 10, head + 10)
        assert empty.count == 0
        assert len(LogColumns.of_packed(empty)[0]) == 0
        # rows aggregated in another order than the log's are put back in it
        backwards = replace(
            packed,
            positions=array("q", reversed(packed.positions)),
            versions=array("q", reversed(packed.versions)),
            recorded_us=array("q", reversed(packed.recorded_us)),
            originator_ids="".join(
                reversed([packed.originator_ids[n : n + 36] for n in range(0, len(rows) * 36, 36)])
            ),
            topics=packed.topics[::-1],
            states=b"".join(reversed(LogColumns.of_rows(rows).states.to_pylist())),
            state_lengths=array("i", reversed(packed.state_lengths)),
            in_scope=b"".join(b"1" if r[5] == tenant else b"0" for r in reversed(rows)),
        )
        columns, scoped = LogColumns.of_packed(backwards)
        _same(columns, LogColumns.of_rows(rows))
        assert scoped is not None
        assert scoped.to_pylist() == [r[5] == tenant for r in rows]
    finally:
        log.close()
