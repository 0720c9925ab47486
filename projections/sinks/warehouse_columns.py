"""The warehouse tables' columns for rows of the log, built in bulk: the values `chunk_of` takes
from each event's sink record, without making the sink record.

Most events are plain (`RecordMaker.plain_parts`: their stored JSON holds no value but their
time that JSON cannot hold): for those the audit record is made from the stored JSON
(`audit_record_of`, as the sink record does) and its columns read off it; the sink record's
enrichment (the body copied, its JSON encoded, the record object) is skipped, since the
warehouse keeps none of it but the severity, the alert and the tenant's slug, computed here the
same way. Any other event (one only the application's mapper reads; a failed sign-in, which
may raise the alert of repeated failures, counted by the record maker) goes through the
`RecordMaker` as before, so both paths give the same values (`chunk_of` is the reference; a
test compares them on the same events). Columns both tables hold are converted to Arrow once;
the payload goes into Arrow as the stored bytes, checked as UTF-8 once for the whole column.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import msgspec
import pyarrow as pa
from eventsourcing.utils import resolve_topic

from domain.audit import AuditEntry
from domain.events import event_id_text, event_type_of
from domain.sinks import NAMED_SEVERITY, classify
from domain.warehouse import AUDIT_LOG, GOVERNANCE_EVENTS, ColumnType, Table
from projections.audit_log import audit_record_of
from projections.sinks.records import RecordMaker, own_slug

Row = Sequence[Any]  # a row of the notification log (see infra.postgres.follower.LogRow)
_encode = msgspec.json.Encoder(enc_hook=str).encode
_decode = msgspec.json.Decoder().decode
_TAGGED = b'"_type_"'  # how the stored JSON marks a value JSON cannot hold (here: the time only)
_ENTRY = event_type_of(AuditEntry.Recorded)
_UNSET: Any = msgspec.UNSET


class _StoredEntry(msgspec.Struct):
    """The stored JSON of an audit entry, only what its columns need (any other field is
    skipped by the decoder, still checked as JSON); a missing field is UNSET."""

    timestamp: Any = _UNSET
    category: Any = _UNSET
    action: Any = _UNSET
    result: Any = _UNSET
    target_resource: Any = _UNSET
    details: msgspec.Raw = msgspec.Raw(b"")
    meta: Any = _UNSET
    class_version: Any = _UNSET


_decode_entry = msgspec.json.Decoder(_StoredEntry).decode
# The values of one event, in this order: the columns both tables hold (the same values), then
# governance_events' own, then audit_log's own.
_SHARED = (
    "event_id",
    "position",
    "tenant_id",
    "occurred_at",
    "actor_id",
    "actor_type",
    "constitutional_hash",
)
_EVENTS_ONLY = ("event_type", "aggregate_id", "aggregate_version", "payload")
_AUDIT_ONLY = (
    "tenant_slug",
    "event_type",
    "event_category",
    "action",
    "result",
    "target_resource",
    "severity",
    "alert",
    "details",
)
Values = tuple[Any, ...]  # one event's, in the order above
_WIDTH = len(_SHARED) + len(_EVENTS_ONLY) + len(_AUDIT_ONLY)

ARROW_TYPES: dict[ColumnType, pa.DataType] = {
    ColumnType.STRING: pa.string(),
    ColumnType.INT: pa.int64(),
    ColumnType.TIMESTAMP: pa.timestamp("us", tz="UTC"),
    ColumnType.JSON: pa.string(),
    ColumnType.BOOL: pa.bool_(),
}


def arrow_schema(table: Table) -> pa.Schema:
    return pa.schema(
        [pa.field(c.name, ARROW_TYPES[c.type], nullable=c.nullable) for c in table.columns]
    )


class ColumnMaker:
    """Rows of the log to the Arrow tables of a load (see the module docstring)."""

    def __init__(self, records: RecordMaker) -> None:
        self._records = records
        self._entry_topics: dict[str, bool] = {}

    def __call__(self, rows: Sequence[Row], tables: Sequence[Table]) -> dict[str, pa.Table]:
        values = [self._entry(row) or self._plain(row) or self._recorded(row) for row in rows]
        columns = list(zip(*values, strict=True)) if values else [()] * _WIDTH
        shared = dict(zip(_SHARED, columns, strict=False))
        events = dict(zip(_EVENTS_ONLY, columns[len(_SHARED) :], strict=False))
        audit = dict(zip(_AUDIT_ONLY, columns[len(_SHARED) + len(_EVENTS_ONLY) :], strict=True))
        return _arrow(shared, events, audit, tables, len(rows))

    def _entry(self, row: Row) -> Values | None:
        """The row's values if it is a plain audit entry (most of the log): the stored JSON
        decoded into `_StoredEntry` (no dict of the whole event) and the audit record's columns
        taken as `audit_record_of` makes them for an entry. Anything unusual (another event,
        a field of an unexpected type, a tagged value besides the time, a failed sign-in)
        returns None, for `_plain` or `_recorded`."""
        topic = row[3]
        entry = self._entry_topics.get(topic)
        if entry is None:
            entry = self._entry_topics[topic] = event_type_of(resolve_topic(topic)) == _ENTRY
        state = bytes(row[4])
        if not entry or state.count(_TAGGED) != 1:
            return None
        try:
            stored = _decode_entry(state)
            details = _decode(stored.details)
        except msgspec.DecodeError:
            return None
        stamp, meta = stored.timestamp, stored.meta
        if (
            type(stamp) is not dict
            or stamp.get("_type_") != "datetime_iso"
            or stored.class_version is not _UNSET
            or type(meta) is not dict
            or type(details) is not dict
        ):
            return None
        category, action, result = stored.category, stored.action, stored.result
        target, actor = stored.target_resource, meta.get("actor")
        if (
            type(category) is not str
            or type(action) is not str
            or type(result) is not str
            or (target is not None and type(target) is not str)
            or type(actor) is not dict
            or (category == "authentication" and result == "failure")  # see `_plain`
        ):
            return None
        tenant, hash_ = meta.get("tenant_id"), meta.get("constitutional_hash")
        if type(tenant) is not str or type(hash_) is not str or "sub" not in actor:
            return None
        kind = f"{category}.{action}"
        severity, alert = classify(
            {
                "event_type": kind,
                "result": result,
                "details": details,
                "constitutional_validation_passed": bool(
                    details.get("constitutional_validation_passed", True)
                ),
                "event_category": category,
            }
        )
        aggregate = str(row[1])
        version = row[2]
        return (
            event_id_text(aggregate, version),
            int(row[0]),
            tenant,
            row[6],
            actor["sub"],
            actor.get("actor_type", "user"),
            hash_,
            # governance_events
            _ENTRY,
            aggregate,
            int(version),
            state,
            # audit_log: an entry's own slug is never needed (`own_slug`: tenants' events)
            self._records.slug(tenant) or None,
            kind,
            category,
            action,
            result,
            target,
            NAMED_SEVERITY[severity],
            alert,
            _encode(details).decode(),
        )

    def _plain(self, row: Row) -> Values | None:
        """The row's values if it is a plain event (not a failed sign-in)."""
        position, originator_id, version, topic, state = row[:5]
        text = bytes(state)
        found = self._records.plain_parts(topic, text)
        if found is None:
            return None
        kind, at, fields = found
        meta = fields["meta"]
        aggregate = str(originator_id)
        record = audit_record_of(
            audit_id="",
            event_type=kind,
            aggregate_id=aggregate,
            timestamp=at,
            meta=meta,
            fields=fields,
        )
        category = record.get("event_category")
        result = record["result"]
        if category == "authentication" and result == "failure":
            return None  # counted towards repeated failures by the record maker
        severity, alert = classify(record)
        tenant = str(meta["tenant_id"])
        details = record["details"]
        return (
            event_id_text(aggregate, version),
            int(position),
            tenant,
            row[6],
            record["actor_id"],
            record["actor_type"],
            str(meta["constitutional_hash"]),
            # governance_events
            kind,
            aggregate,
            int(version),
            text,  # UTF-8, checked once for the whole column (`_arrow`)
            # audit_log
            self._records.slug(tenant) or own_slug(kind, record),
            str(record["event_type"]),
            category,
            record.get("action"),
            result,
            record.get("target_resource"),
            NAMED_SEVERITY[severity],
            alert,
            None if details is None else _encode(details).decode(),
        )

    def _recorded(self, row: Row) -> Values:
        """The row's values from its sink record (as `chunk_of` takes them)."""
        record = self._records.record(row)
        body = record.body
        details = body.get("details")
        return (
            record.event_id,
            record.position,
            record.tenant_id,
            row[6],
            body.get("actor_id"),
            body.get("actor_type"),
            body.get("constitutional_hash"),
            # governance_events
            body.get("source_event_type", record.event_type),
            str(row[1]),
            int(row[2]),
            bytes(row[4]),
            # audit_log
            body.get("tenant_slug"),
            record.event_type,
            body.get("event_category"),
            body.get("action"),
            body.get("result"),
            body.get("target_resource"),
            body.get("severity"),
            record.alert,
            None if details is None else _encode(details).decode(),
        )


def _arrow(
    shared: Mapping[str, Sequence[Any]],
    events: Mapping[str, Sequence[Any]],
    audit: Mapping[str, Sequence[Any]],
    tables: Sequence[Table],
    count: int,
) -> dict[str, pa.Table]:
    arrays: dict[str, pa.Array] = {}
    out = {}
    for table in tables:
        own = events if table.name == GOVERNANCE_EVENTS.name else audit
        if table.name not in (GOVERNANCE_EVENTS.name, AUDIT_LOG.name):
            msg = f"no columns are made for the table {table.name}"
            raise KeyError(msg)
        columns = []
        for column in table.columns:
            kind = ARROW_TYPES[column.type]
            if column.name in own:
                mine = own[column.name]
                if own is events and column.name == "payload":  # the stored JSON's bytes
                    columns.append(pa.array(mine, pa.binary()).cast(kind))
                    continue
                columns.append(pa.array(mine, kind))
                continue
            if column.name not in arrays:
                values = shared.get(column.name)
                arrays[column.name] = (
                    pa.nulls(count, kind) if values is None else pa.array(values, kind)
                )
            columns.append(arrays[column.name])
        out[table.name] = pa.Table.from_arrays(columns, schema=arrow_schema(table))
    return out
