"""The warehouse tables' columns for rows of the log, built in bulk: the values `chunk_of` takes
from each event's sink record, without making the sink record (`chunk_of` is the reference; a
test compares them on the same events, column by column).

Three paths, by event:

- A plain audit entry (`AuditEntry.Recorded` whose stored JSON holds no value but its time that
  JSON cannot hold): most of the log. All of a chunk's entries are decoded in one call, as one
  JSON array, into structs of the fields their columns need (`_StoredEntry`: no dict of the
  event, nothing the garbage collector tracks); the audit record's columns are taken from them
  as `audit_record_of` makes an entry's record, the severity and alert by `classify` once per
  distinct answer, and the details copied as stored (Python's JSON and msgspec write them alike
  but for floats in exponent form, which are written again by msgspec). An entry the typed
  decoder refuses (a field missing or of another type) takes the next path.
- Any other plain event: the audit record made from its stored JSON (`audit_record_of`, as the
  sink record does) and its columns read off it.
- An event only the application's mapper reads, and a failed sign-in (which may raise the alert
  of repeated failures, counted by the record maker): through the `RecordMaker`, as before.

Columns both tables hold are converted to Arrow once; the payload (and entries' details) go into
Arrow as the stored bytes, checked as UTF-8 once for the whole column.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from hashlib import sha1
from typing import Any
from uuid import NAMESPACE_URL, uuid5

import msgspec
import pyarrow as pa
import pyarrow.compute as pc
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


class _Stamp(msgspec.Struct, gc=False):
    kind: str = msgspec.field(name="_type_")


class _Actor(msgspec.Struct, gc=False):
    sub: str | None
    actor_type: str | None = "user"  # `audit_record_of`'s default


class _Meta(msgspec.Struct, gc=False):
    tenant_id: str
    actor: _Actor
    constitutional_hash: str


class _Details(msgspec.Struct, gc=False):
    """What the classification reads of an entry's details (which must be an object)."""

    severity: Any = ""
    constitutional_validation_passed: Any = True


class _StoredEntry(msgspec.Struct, gc=False):
    """The stored JSON of an audit entry, only what its columns need, typed so that the decoder
    makes no dict (any other field is skipped, still checked as JSON). A missing field or one
    of another type fails the decoding: such an entry takes the general path."""

    timestamp: _Stamp
    category: str
    action: str
    result: str
    target_resource: str | None
    details: msgspec.Raw
    meta: _Meta
    class_version: Any = _UNSET


_decode_entry = msgspec.json.Decoder(_StoredEntry).decode
_decode_entries = msgspec.json.Decoder(list[_StoredEntry]).decode
_decode_details = msgspec.json.Decoder(_Details).decode
_decode_all_details = msgspec.json.Decoder(list[_Details]).decode
_Found = tuple[_StoredEntry, _Details]  # an entry as decoded, and what its details say
# Where the stored JSON (Python's `json`) and msgspec write a value differently: floats in
# exponent form (1e+16 and 1e16). Details holding neither string are copied as stored.
_EXPONENTS = (b"e+", b"e-")
_NAMESPACE = uuid5(NAMESPACE_URL, "urn:acgs:event").bytes  # `domain.events.event_id`'s
_VARIANT = {c: "89ab"[int(c, 16) & 3] for c in "0123456789abcdef"}  # RFC 4122's variant
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
# The names of those values, audit_log's event type named apart from governance_events'.
_NAMES = (
    *_SHARED,
    *_EVENTS_ONLY,
    *("audit_event_type" if n == "event_type" else n for n in _AUDIT_ONLY),
)

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
        self._classes: dict[tuple[str, str, str, bool, bool], tuple[str, str | None]] = {}

    def __call__(self, rows: Sequence[Row], tables: Sequence[Table]) -> dict[str, pa.Table]:
        entries, found, others = self._entries(rows)
        values = [self._plain(row) or self._recorded(row) for row in others]
        columns = list(zip(*values, strict=True)) if values else [()] * _WIDTH
        made = _arrow(dict(zip(_NAMES, columns, strict=True)), tables, len(others))
        if not entries:
            return made
        bulk = _arrow(self._entry_columns(entries, found), tables, len(entries))
        if not others:
            return bulk
        out = {}
        for name, table in bulk.items():
            both = pa.concat_tables([table, made[name]])
            out[name] = both.take(pc.sort_indices(both.column("position")))  # log order
        return out

    def _entries(self, rows: Sequence[Row]) -> tuple[list[Row], list[_Found], list[Row]]:
        """The rows that are plain audit entries (most of the log), each with its decoded
        entry and details, and the other rows. All entries are decoded in one call (one JSON
        array of them: no Python code an event); a chunk with an entry the decoder refuses is
        decoded entry by entry, and a refused one goes with the other rows."""
        candidates, others = [], []
        for row in rows:
            if self._is_entry(row[3]) and bytes(row[4]).count(_TAGGED) == 1:
                candidates.append(row)
            else:
                others.append(row)
        decoded = _decoded(candidates)
        entries: list[Row] = []
        found: list[_Found] = []
        for row, parts in zip(candidates, decoded, strict=True):
            if parts is None:
                others.append(row)
                continue
            stored = parts[0]
            if (
                stored.timestamp.kind != "datetime_iso"
                or stored.class_version is not _UNSET
                or (stored.category == "authentication" and stored.result == "failure")
            ):  # a failed sign-in counts towards repeated failures (see `_plain`)
                others.append(row)
            else:
                entries.append(row)
                found.append(parts)
        if len(others) > len(rows) - len(candidates):
            others.sort(key=lambda r: int(r[0]))
        return entries, found, others

    def _is_entry(self, topic: str) -> bool:
        entry = self._entry_topics.get(topic)
        if entry is None:
            entry = self._entry_topics[topic] = event_type_of(resolve_topic(topic)) == _ENTRY
        return entry

    def _entry_columns(self, rows: list[Row], found: list[_Found]) -> dict[str, Sequence[Any]]:
        """The columns of plain audit entries, as `audit_record_of` makes an entry's record."""
        stored = [f[0] for f in found]
        details = [f[1] for f in found]
        metas = [e.meta for e in stored]
        tenants = [m.tenant_id for m in metas]
        kinds = [f"{e.category}.{e.action}" for e in stored]
        classes = [
            self._class_of(k, e.result, e.category, d)
            for k, e, d in zip(kinds, stored, details, strict=True)
        ]
        aggregates = [str(r[1]) for r in rows]
        return {
            "event_id": _event_ids(aggregates, [r[2] for r in rows]),
            "position": [r[0] for r in rows],
            "tenant_id": tenants,
            "occurred_at": [r[6] for r in rows],
            "actor_id": [m.actor.sub for m in metas],
            "actor_type": [m.actor.actor_type for m in metas],
            "constitutional_hash": [m.constitutional_hash for m in metas],
            "event_type": [_ENTRY] * len(rows),
            "aggregate_id": aggregates,
            "aggregate_version": [r[2] for r in rows],
            "payload": [bytes(r[4]) for r in rows],
            # an entry's own slug is never needed (`own_slug`: tenants' events)
            "tenant_slug": [self._records.slug(t) or None for t in tenants],
            "audit_event_type": kinds,
            "event_category": [e.category for e in stored],
            "action": [e.action for e in stored],
            "result": [e.result for e in stored],
            "target_resource": [e.target_resource for e in stored],
            "severity": [c[0] for c in classes],
            "alert": [c[1] for c in classes],
            "details": [_details_text(e.details) for e in stored],
        }

    def _class_of(
        self, kind: str, result: str, category: str, details: _Details
    ) -> tuple[str, str | None]:
        """(severity name, alert) of an entry, by `classify` on what it reads of the record
        (kept per distinct answer: a chunk has few)."""
        critical = str(details.severity) == "critical"
        passed = bool(details.constitutional_validation_passed)
        key = (kind, result, category, critical, passed)
        known = self._classes.get(key)
        if known is None:
            severity, alert = classify(
                {
                    "event_type": kind,
                    "result": result,
                    "details": {"severity": "critical" if critical else ""},
                    "constitutional_validation_passed": passed,
                    "event_category": category,
                }
            )
            known = self._classes[key] = (NAMED_SEVERITY[severity], alert)
        return known

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


def _decoded(rows: Sequence[Row]) -> list[_Found | None]:
    """Each row's stored entry and its details (None where the decoder refuses it)."""
    states = [bytes(r[4]) for r in rows]
    try:
        stored = _decode_entries(b"[" + b",".join(states) + b"]")
        details = _decode_all_details(b"[" + b",".join([e.details for e in stored]) + b"]")
        return list(zip(stored, details, strict=True))
    except (msgspec.DecodeError, msgspec.ValidationError):
        return [_decoded_one(state) for state in states]


def _decoded_one(state: bytes) -> _Found | None:
    try:
        stored = _decode_entry(state)
        return stored, _decode_details(stored.details)
    except (msgspec.DecodeError, msgspec.ValidationError):
        return None


def _details_text(raw: msgspec.Raw) -> bytes:
    """An entry's details as the sink record writes them (msgspec's JSON of the dict)."""
    text = bytes(raw)
    if any(e in text for e in _EXPONENTS):
        return _encode(_decode(text))
    return text


def _event_ids(aggregates: Sequence[str], versions: Sequence[int]) -> list[str]:
    """`domain.events.event_id_text` of each (aggregate, version): the UUID v5 from its SHA-1."""
    out = []
    for aggregate, version in zip(aggregates, versions, strict=True):
        # UUID v5 is defined on SHA-1: an identifier, not a security use
        h = sha1(_NAMESPACE + f"{aggregate}:{version}".encode(), usedforsecurity=False).hexdigest()
        out.append(f"{h[:8]}-{h[8:12]}-5{h[13:16]}-{_VARIANT[h[16]]}{h[17:20]}-{h[20:32]}")
    return out


def _arrow(
    columns: Mapping[str, Sequence[Any]], tables: Sequence[Table], count: int
) -> dict[str, pa.Table]:
    """The Arrow tables of `columns` (by `_NAMES`): a column both tables hold is converted once;
    the payload goes in as the stored bytes, checked as UTF-8 once for the whole column."""
    arrays: dict[str, pa.Array] = {}
    out = {}
    for table in tables:
        if table.name not in (GOVERNANCE_EVENTS.name, AUDIT_LOG.name):
            msg = f"no columns are made for the table {table.name}"
            raise KeyError(msg)
        made = []
        for column in table.columns:
            name = column.name
            if table.name == AUDIT_LOG.name and name == "event_type":
                name = "audit_event_type"
            if name not in arrays:
                kind = ARROW_TYPES[column.type]
                values = columns.get(name)
                if values is None:
                    arrays[name] = pa.nulls(count, kind)
                elif name in ("payload", "details") and values and type(values[0]) is bytes:
                    arrays[name] = pa.array(values, pa.binary()).cast(kind)  # JSON's bytes
                else:
                    arrays[name] = pa.array(values, kind)
            made.append(arrays[name])
        out[table.name] = pa.Table.from_arrays(made, schema=arrow_schema(table))
    return out
