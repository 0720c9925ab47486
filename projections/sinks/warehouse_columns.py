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

from domain.events import event_id_text
from domain.sinks import NAMED_SEVERITY, classify
from domain.warehouse import AUDIT_LOG, GOVERNANCE_EVENTS, ColumnType, Table
from projections.audit_log import audit_record_of
from projections.sinks.records import RecordMaker, own_slug

Row = Sequence[Any]  # a row of the notification log (see infra.postgres.follower.LogRow)
_encode = msgspec.json.Encoder(enc_hook=str).encode
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

    def __call__(self, rows: Sequence[Row], tables: Sequence[Table]) -> dict[str, pa.Table]:
        values = [self._plain(row) or self._recorded(row) for row in rows]
        columns = list(zip(*values, strict=True)) if values else [()] * _WIDTH
        shared = dict(zip(_SHARED, columns, strict=False))
        events = dict(zip(_EVENTS_ONLY, columns[len(_SHARED) :], strict=False))
        audit = dict(zip(_AUDIT_ONLY, columns[len(_SHARED) + len(_EVENTS_ONLY) :], strict=True))
        return _arrow(shared, events, audit, tables, len(rows))

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
