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
test compares them on the same events). Columns both tables hold are converted to Arrow once.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import msgspec
import pyarrow as pa

from domain.events import event_id
from domain.sinks import NAMED_SEVERITY, classify
from domain.warehouse import AUDIT_LOG, GOVERNANCE_EVENTS, ColumnType, Table
from projections.audit_log import audit_record_of
from projections.sinks.records import RecordMaker, own_slug

Row = Sequence[Any]  # a row of the notification log (see infra.postgres.follower.LogRow)
_encode = msgspec.json.Encoder(enc_hook=str).encode
# the columns both tables hold (the same values), then each table's own
_SHARED = [
    "event_id",
    "position",
    "tenant_id",
    "occurred_at",
    "actor_id",
    "actor_type",
    "constitutional_hash",
]
_EVENTS_ONLY = ["event_type", "aggregate_id", "aggregate_version", "payload"]
_AUDIT_ONLY = [
    "tenant_slug",
    "event_type",
    "event_category",
    "action",
    "result",
    "target_resource",
    "severity",
    "alert",
    "details",
]

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
        shared: dict[str, list[Any]] = {c: [] for c in _SHARED}
        events: dict[str, list[Any]] = {c: [] for c in _EVENTS_ONLY}
        audit: dict[str, list[Any]] = {c: [] for c in _AUDIT_ONLY}
        for row in rows:
            if not self._plain(row, shared, events, audit):
                self._recorded(row, shared, events, audit)
        return _arrow(shared, events, audit, tables, len(rows))

    def _plain(
        self,
        row: Row,
        shared: dict[str, list[Any]],
        events: dict[str, list[Any]],
        audit: dict[str, list[Any]],
    ) -> bool:
        """Append the row's values if it is a plain event (not a failed sign-in)."""
        position, originator_id, version, topic, state = row[:5]
        text = bytes(state)
        found = self._records.plain_parts(topic, text)
        if found is None:
            return False
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
            return False  # counted towards repeated failures by the record maker
        severity, alert = classify(record)
        tenant = str(meta["tenant_id"])
        shared["event_id"].append(str(event_id(aggregate, version)))
        shared["position"].append(int(position))
        shared["tenant_id"].append(tenant)
        shared["occurred_at"].append(row[6])
        shared["actor_id"].append(record["actor_id"])
        shared["actor_type"].append(record["actor_type"])
        shared["constitutional_hash"].append(str(meta["constitutional_hash"]))
        events["event_type"].append(kind)
        events["aggregate_id"].append(aggregate)
        events["aggregate_version"].append(int(version))
        events["payload"].append(text.decode())
        audit["tenant_slug"].append(self._records.slug(tenant) or own_slug(kind, record))
        audit["event_type"].append(str(record["event_type"]))
        audit["event_category"].append(category)
        audit["action"].append(record.get("action"))
        audit["result"].append(result)
        audit["target_resource"].append(record.get("target_resource"))
        audit["severity"].append(NAMED_SEVERITY[severity])
        audit["alert"].append(alert)
        details = record["details"]
        audit["details"].append(None if details is None else _encode(details).decode())
        return True

    def _recorded(
        self,
        row: Row,
        shared: dict[str, list[Any]],
        events: dict[str, list[Any]],
        audit: dict[str, list[Any]],
    ) -> None:
        """Append the row's values from its sink record (as `chunk_of` does)."""
        record = self._records.record(row)
        body = record.body
        shared["event_id"].append(record.event_id)
        shared["position"].append(record.position)
        shared["tenant_id"].append(record.tenant_id)
        shared["occurred_at"].append(row[6])
        shared["actor_id"].append(body.get("actor_id"))
        shared["actor_type"].append(body.get("actor_type"))
        shared["constitutional_hash"].append(body.get("constitutional_hash"))
        events["event_type"].append(body.get("source_event_type", record.event_type))
        events["aggregate_id"].append(str(row[1]))
        events["aggregate_version"].append(int(row[2]))
        events["payload"].append(bytes(row[4]).decode())
        audit["tenant_slug"].append(body.get("tenant_slug"))
        audit["event_type"].append(record.event_type)
        audit["event_category"].append(body.get("event_category"))
        audit["action"].append(body.get("action"))
        audit["result"].append(body.get("result"))
        audit["target_resource"].append(body.get("target_resource"))
        audit["severity"].append(body.get("severity"))
        audit["alert"].append(record.alert)
        details = body.get("details")
        audit["details"].append(None if details is None else _encode(details).decode())


def _arrow(
    shared: dict[str, list[Any]],
    events: dict[str, list[Any]],
    audit: dict[str, list[Any]],
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
                columns.append(pa.array(own[column.name], kind))
                continue
            if column.name not in arrays:
                values = shared.get(column.name)
                arrays[column.name] = (
                    pa.nulls(count, kind) if values is None else pa.array(values, kind)
                )
            columns.append(arrays[column.name])
        out[table.name] = pa.Table.from_arrays(columns, schema=arrow_schema(table))
    return out
