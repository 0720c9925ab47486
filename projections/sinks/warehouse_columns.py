"""The warehouse tables' columns for rows of the log, built in bulk: the values `chunk_of` takes
from each event's sink record, without making the sink record (`chunk_of` is the reference; a
test compares them on the same events, column by column).

The rows come as Arrow columns (`LogColumns`: from the sync's packed read of the log, or from
log rows); the columns the log holds as they are (position, time, aggregate id and version,
payload) stay in Arrow for audit entries.

Three paths, by event:

- A plain audit entry (`AuditEntry.Recorded` whose stored JSON holds no value but its time that
  JSON cannot hold): most of the log. A chunk's candidates are found in Arrow (topic, a tagged
  value) and their states joined there into one JSON array (no Python object a state); that
  each holds one tagged value only is seen by counting them in the array (as many as states);
  all are decoded in one call into structs of the fields their columns need (`_StoredEntry`:
  no dict of the event, nothing the garbage collector tracks); the audit record's columns are
  taken from them
  as `audit_record_of` makes an entry's record, the severity and alert by `classify` once per
  distinct answer, and the details copied as stored (Python's JSON and msgspec write them alike
  but for floats in exponent form, looked for in all of a chunk's details at once and written
  again by msgspec). An entry the typed decoder refuses (a field missing or of another type)
  takes the next path.
- Any other plain event: the audit record made from its stored JSON (`audit_record_of`, as the
  sink record does) and its columns read off it.
- An event only the application's mapper reads, and a failed sign-in (which may raise the alert
  of repeated failures, counted by the record maker): through the `RecordMaker`, as before.

Columns both tables hold are converted to Arrow once; the payload (and entries' details) go into
Arrow as the stored bytes, checked as UTF-8 once for the whole column. Entries' event ids take
one SHA-1 call an event; the UUIDs' version and variant bits and their text are laid out for
the whole chunk at once (byte translations and strided copies).
"""

from __future__ import annotations

import re
from array import array
from binascii import hexlify
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from hashlib import sha1
from typing import Any, Protocol
from uuid import NAMESPACE_URL, UUID, uuid5

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
_TAGGED_RE = re.compile(re.escape(_TAGGED))
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
# Where the stored JSON (Python's `json`) and msgspec write a value differently: floats in
# exponent form (1e+16 and 1e16; Python writes the exponent's sign always). A JSON number
# follows a colon, a comma, a bracket or white space; this matches every one in exponent form
# (and some text inside strings, harmlessly: those details are written again, alike).
_EXPONENT = re.compile(rb"[:,\[\s]-?[0-9]+(?:\.[0-9]+)?e[+-]")
_SIGNED = re.compile(rb"e[+-]")  # found fast (a literal), then `_EXPONENT` before it
_FLOAT_BEFORE_SIGN = 32  # a float as Python writes it: at most 17 digits, a point and a sign
_NAMESPACE = uuid5(NAMESPACE_URL, "urn:acgs:event").bytes  # `domain.events.event_id`'s
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

_TIME = pa.timestamp("us", tz="UTC")
_SINCE_2000_US = 946_684_800_000_000  # 2000-01-01 (PostgreSQL's epoch) in Unix microseconds
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


class Packed(Protocol):
    """Rows of the log packed column by column (`infra.postgres.follower.PackedLog`)."""

    @property
    def count(self) -> int: ...
    @property
    def last(self) -> int:  # the greatest position read
        ...
    @property
    def positions(self) -> array[int]:  # int64 each
        ...
    @property
    def versions(self) -> array[int]:  # int64 each
        ...
    @property
    def recorded_us(self) -> array[int]:  # microseconds since 2000-01-01 UTC
        ...
    @property
    def originator_ids(self) -> str:  # 36 characters each
        ...
    @property
    def topics(self) -> list[str]: ...
    @property
    def states(self) -> bytes:  # one after the other
        ...
    @property
    def state_lengths(self) -> array[int]:  # int32 each
        ...
    @property
    def in_scope(self) -> bytes | None:  # b"1" or b"0" a row, or None
        ...


@dataclass(frozen=True)
class LogColumns:
    """Rows of the log as Arrow columns, in log order: what `ColumnMaker` reads."""

    positions: pa.Array  # int64
    originators: pa.Array  # string: the aggregate id's canonical text
    versions: pa.Array  # int64
    topics: pa.Array  # string
    states: pa.Array  # binary: the stored JSON
    recorded: pa.Array  # timestamp (us, UTC)

    def __len__(self) -> int:
        return len(self.positions)

    @classmethod
    def of_rows(cls, rows: Sequence[Row]) -> LogColumns:
        """The columns of log rows (`infra.postgres.follower.LogRow`)."""
        return cls(
            pa.array([int(r[0]) for r in rows], pa.int64()),
            pa.array([str(r[1]) for r in rows], pa.string()),
            pa.array([int(r[2]) for r in rows], pa.int64()),
            pa.array([r[3] for r in rows], pa.string()),
            pa.array([bytes(r[4]) for r in rows], pa.binary()),
            pa.array([r[6] for r in rows], _TIME),
        )

    @classmethod
    def of_packed(cls, packed: Packed) -> tuple[LogColumns, pa.Array | None]:
        """The columns of a packed read, in log order, and whether each row is in the read's
        scope (None without one). No Python object a row but the topic."""
        count = packed.count

        def fixed(kind: pa.DataType, values: Any) -> pa.Array:
            return pa.Array.from_buffers(kind, count, [None, pa.py_buffer(values)])

        lengths = fixed(pa.int32(), packed.state_lengths)
        ends = pc.cumulative_sum_checked(lengths)  # raises beyond 2 GiB of states
        offsets = pa.concat_arrays([pa.array([0], pa.int32()), ends]).buffers()[1]
        columns = cls(
            fixed(pa.int64(), packed.positions),
            fixed(pa.binary(36), packed.originator_ids.encode()).cast(pa.string()),
            fixed(pa.int64(), packed.versions),
            pa.array(packed.topics, pa.string()),
            pa.Array.from_buffers(pa.binary(), count, [None, offsets, pa.py_buffer(packed.states)]),
            pc.add(fixed(pa.int64(), packed.recorded_us), _SINCE_2000_US).cast(_TIME),
        )
        scope = None
        if packed.in_scope is not None:
            scope = pc.equal(fixed(pa.uint8(), packed.in_scope), ord("1"))
        positions = columns.positions
        if count > 1 and not pc.all(pc.less(positions[:-1], positions[1:])).as_py():
            order = pc.sort_indices(positions)  # PostgreSQL aggregated them in another order
            columns = columns.take(order)
            scope = None if scope is None else scope.take(order)
        return columns, scope

    def take(self, indices: Sequence[int] | pa.Array) -> LogColumns:
        if not isinstance(indices, pa.Array):
            indices = pa.array(indices, pa.int64())
        return LogColumns(*(c.take(indices) for c in _columns_of(self)))

    def filter(self, mask: pa.Array) -> LogColumns:
        return LogColumns(*(c.filter(mask) for c in _columns_of(self)))

    def rows(self) -> list[Row]:
        """The rows as the log's tuples (the tenant, which no column needs, as None)."""
        return [
            (position, UUID(originator), version, topic, state, None, at)
            for position, originator, version, topic, state, at in zip(
                *(c.to_pylist() for c in _columns_of(self)), strict=True
            )
        ]


def _columns_of(columns: LogColumns) -> tuple[pa.Array, ...]:
    return (
        columns.positions,
        columns.originators,
        columns.versions,
        columns.topics,
        columns.states,
        columns.recorded,
    )


class ColumnMaker:
    """Rows of the log to the Arrow tables of a load (see the module docstring)."""

    def __init__(self, records: RecordMaker) -> None:
        self._records = records
        self._entry_topics: dict[str, bool] = {}
        self._classes: dict[tuple[str, str, str, bool, bool], tuple[str, str | None]] = {}

    def __call__(self, chunk: LogColumns, tables: Sequence[Table]) -> dict[str, pa.Table]:
        entries, found, others = self._entries(chunk)
        values = [self._plain(row) or self._recorded(row) for row in others]
        columns = list(zip(*values, strict=True)) if values else [()] * _WIDTH
        made = _arrow(dict(zip(_NAMES, columns, strict=True)), tables, len(others))
        if not found.stored:
            return made
        bulk = _arrow(self._entry_columns(entries, found), tables, len(entries))
        if not others:
            return bulk
        out = {}
        for name, table in bulk.items():
            both = pa.concat_tables([table, made[name]])
            out[name] = both.take(pc.sort_indices(both.column("position")))  # log order
        return out

    def _entries(self, chunk: LogColumns) -> tuple[LogColumns, _Entries, list[Row]]:
        """The rows that are plain audit entries (most of the log), with each one's decoded
        entry and details, and the other rows (as tuples, in log order). Candidates are found
        in Arrow (the topic, a tagged value in the state) and their states joined there into
        one JSON array; that each holds one tagged value only is seen from the array (as many
        as there are states: each has one); all are decoded in one call (no Python code an
        event). A chunk with an entry the decoder refuses is decoded entry by entry, and a
        refused one goes with the other rows."""
        count = len(chunk)
        if not count:
            return chunk, _Entries([], []), []
        topics = pc.unique(chunk.topics).to_pylist()
        entry_topics = [t for t in topics if self._is_entry(t)]
        candidate = pc.greater_equal(pc.find_substring(chunk.states, _TAGGED.decode()), 0)
        if entry_topics != topics:
            in_topics = pc.is_in(chunk.topics, value_set=pa.array(entry_topics, pa.string()))
            candidate = pc.and_(candidate, in_topics)
        indices = None if pc.all(candidate).as_py() else pc.indices_nonzero(candidate)
        states = chunk.states if indices is None else chunk.states.take(indices)
        array = _json_array(states)
        if len(_TAGGED_RE.findall(array)) != len(states):  # some hold another tagged value
            once = pa.array([s.count(_TAGGED) == 1 for s in states.to_pylist()], pa.bool_())
            indices = pc.indices_nonzero(once) if indices is None else indices.filter(once)
            states = states.filter(once)
            array = _json_array(states)
        decoded = _decoded(states, array)
        return self._kept(chunk, None if indices is None else indices.to_pylist(), decoded)

    def _kept(
        self, chunk: LogColumns, indices: list[int] | None, decoded: _Decoded
    ) -> tuple[LogColumns, _Entries, list[Row]]:
        """Of the decoded candidates (at `indices` of the chunk, None: every row), those that
        take the entries' path; the rest of the chunk as rows."""
        count = len(chunk)
        stored, details = decoded
        plain = [
            e is not None
            and e.timestamp.kind == "datetime_iso"
            and e.class_version is _UNSET
            and not (e.category == "authentication" and e.result == "failure")
            for e in stored
        ]  # a failed sign-in counts towards repeated failures (see `_plain`)
        if indices is None and all(plain):
            return chunk, _Entries(stored, details), []  # type: ignore[arg-type]
        if indices is None:
            indices = list(range(count))
        kept = [index for index, ok in zip(indices, plain, strict=True) if ok]
        found = _Entries(
            [e for e, ok in zip(stored, plain, strict=True) if ok],  # type: ignore[misc]
            [d for d, ok in zip(details, plain, strict=True) if ok],  # type: ignore[misc]
        )
        taken = [False] * count
        for index in kept:
            taken[index] = True
        rest = [index for index in range(count) if not taken[index]]
        return chunk.take(kept), found, chunk.take(rest).rows()

    def _is_entry(self, topic: str) -> bool:
        entry = self._entry_topics.get(topic)
        if entry is None:
            entry = self._entry_topics[topic] = event_type_of(resolve_topic(topic)) == _ENTRY
        return entry

    def _entry_columns(self, rows: LogColumns, found: _Entries) -> dict[str, Any]:
        """The columns of plain audit entries, as `audit_record_of` makes an entry's record;
        those the log holds as they are (position, time, aggregate, payload) stay in Arrow."""
        stored = found.stored
        metas = [e.meta for e in stored]
        tenants = [m.tenant_id for m in metas]
        categories = [e.category for e in stored]
        actions = [e.action for e in stored]
        results = [e.result for e in stored]
        distinct: dict[tuple[str, str, str, bool, bool], int] = {}  # each one's index
        classes = pa.array(
            [
                distinct.setdefault(key, len(distinct))
                for key in zip(
                    categories,
                    actions,
                    results,
                    [d.severity == "critical" for d in found.details],
                    [bool(d.constitutional_validation_passed) for d in found.details],
                    strict=True,
                )
            ],
            pa.int32(),
        )
        answers = [self._class_of(*key) for key in distinct]
        # an entry's own slug is never needed (`own_slug`: tenants' events)
        slugs = {t: self._records.slug(t) or None for t in set(tenants)}
        category_array = pa.array(categories, pa.string())
        action_array = pa.array(actions, pa.string())
        return {
            "event_id": _event_ids(rows.originators, rows.versions),
            "position": rows.positions,
            "tenant_id": tenants,
            "occurred_at": rows.recorded,
            "actor_id": [m.actor.sub for m in metas],
            "actor_type": [m.actor.actor_type for m in metas],
            "constitutional_hash": [m.constitutional_hash for m in metas],
            "event_type": pa.repeat(pa.scalar(_ENTRY, pa.string()), len(stored)),
            "aggregate_id": rows.originators,
            "aggregate_version": rows.versions,
            "payload": rows.states,
            "tenant_slug": [slugs[t] for t in tenants],
            "audit_event_type": pc.binary_join_element_wise(category_array, action_array, "."),
            "event_category": category_array,
            "action": action_array,
            "result": results,
            "target_resource": [e.target_resource for e in stored],
            "severity": pa.array([a[0] for a in answers], pa.string()).take(classes),
            "alert": pa.array([a[1] for a in answers], pa.string()).take(classes),
            "details": _details_texts(stored),
        }

    def _class_of(
        self, category: str, action: str, result: str, critical: bool, passed: bool
    ) -> tuple[str, str | None]:
        """(severity name, alert) of an entry, by `classify` on what it reads of the record
        (kept per distinct answer: a chunk has few). `critical`: its details' severity is
        "critical" (a JSON value whose text is "critical" is that string); `passed`: the truth
        of their constitutional_validation_passed."""
        key = (category, action, result, critical, passed)
        known = self._classes.get(key)
        if known is None:
            severity, alert = classify(
                {
                    "event_type": f"{category}.{action}",
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


@dataclass(frozen=True)
class _Entries:
    """Stored entries as decoded, and what each one's details say."""

    stored: list[_StoredEntry]
    details: list[_Details]


_Decoded = tuple[list[_StoredEntry | None], list[_Details | None]]  # None: refused


def _json_array(values: pa.Array) -> pa.Buffer:
    """The JSON array of the JSON texts of a binary column, made in Arrow (no Python object a
    value)."""
    whole = pa.ListArray.from_arrays(pa.array([0, len(values)], pa.int32()), values)
    joined = pc.binary_join(whole, b",")
    brackets = pa.array([b"["], pa.binary()), pa.array([b"]"], pa.binary())
    array = pc.binary_join_element_wise(brackets[0], joined, brackets[1], b"")
    buffer: pa.Buffer = array[0].as_buffer()
    return buffer


def _decoded(states: pa.Array, array: pa.Buffer) -> _Decoded:
    """Each stored entry (a binary column of their JSON, and their JSON `array`) and its
    details (None for both where the decoder refuses the entry)."""
    try:
        stored = _decode_entries(array)
        if len(stored) == len(states):
            details = _decode_all_details(b"[" + b",".join([e.details for e in stored]) + b"]")
            return stored, details  # type: ignore[return-value]
    except (msgspec.DecodeError, msgspec.ValidationError):
        pass
    out: _Decoded = ([], [])
    for state in states.to_pylist():
        stored_one, details_one = _decoded_one(state)
        out[0].append(stored_one)
        out[1].append(details_one)
    return out


def _decoded_one(state: bytes) -> tuple[_StoredEntry | None, _Details | None]:
    try:
        stored = _decode_entry(state)
        return stored, _decode_details(stored.details)
    except (msgspec.DecodeError, msgspec.ValidationError):
        return None, None


def _details_texts(stored: Sequence[_StoredEntry]) -> pa.Array | list[bytes]:
    """Entries' details as the sink record writes them (msgspec's JSON of the dict): as stored
    but for numbers in exponent form (written again by msgspec). The chunk's details are
    searched at once (each `e+` or `e-`, then the bytes before it); only a chunk where such a
    number may be is searched entry by entry. Without one, the details go into Arrow as one
    buffer (binary; checked as UTF-8 with the column)."""
    raws = [e.details for e in stored]
    joined = b"\n".join(raws)
    for sign in _SIGNED.finditer(joined):
        end = sign.end()
        if _EXPONENT.search(joined, max(0, end - _FLOAT_BEFORE_SIGN), end):
            texts = [bytes(r) for r in raws]
            return [_encode(_decode(t)) if _EXPONENT.search(t) else t for t in texts]
    lengths = pa.array([len(r) for r in raws], pa.int32())
    offsets = pa.concat_arrays([pa.array([0], pa.int32()), pc.cumulative_sum_checked(lengths)])
    data = pa.py_buffer(b"".join(raws))
    return pa.Array.from_buffers(pa.binary(), len(raws), [None, offsets.buffers()[1], data])


_VERSION_5 = bytes((b & 0x0F) | 0x50 for b in range(256))  # a UUID's 7th byte: version 5
_RFC_4122 = bytes((b & 0x3F) | 0x80 for b in range(256))  # its 9th: RFC 4122's variant
_DIGEST = 20  # SHA-1's bytes (a UUID is the first 16)
_DASHES = (8, 13, 18, 23)  # where a UUID's text has a dash
# Each character of a UUID's text that is a hex digit, and its digit in the digest's hex text.
_HEX_DIGITS = tuple(
    (k, k - sum(1 for d in _DASHES if d < k)) for k in range(36) if k not in _DASHES
)


def _event_ids(aggregates: pa.Array, versions: pa.Array) -> pa.Array:
    """`domain.events.event_id_text` of each (aggregate, version): the UUID v5 of its SHA-1,
    one digest an event, its version and variant set and its text laid out in bulk."""
    count = len(aggregates)
    names = pc.binary_join_element_wise(aggregates, pc.cast(versions, pa.string()), ":").cast(
        pa.binary()
    )
    # UUID v5 is defined on SHA-1: an identifier, not a security use. Each digest starts from a
    # copy of the namespace's hash state.
    namespace = sha1(_NAMESPACE, usedforsecurity=False).copy
    parts = []
    for name in names.to_pylist():
        hashed = namespace()
        hashed.update(name)
        parts.append(hashed.digest())
    digests = bytearray(b"".join(parts))
    digests[6::_DIGEST] = digests[6::_DIGEST].translate(_VERSION_5)
    digests[8::_DIGEST] = digests[8::_DIGEST].translate(_RFC_4122)
    hexed = hexlify(digests)
    text = bytearray(b"-" * (36 * count))
    for at, digit in _HEX_DIGITS:
        text[at::36] = hexed[digit :: 2 * _DIGEST]
    return pa.Array.from_buffers(pa.binary(36), count, [None, pa.py_buffer(text)]).cast(pa.string())


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
                elif isinstance(values, pa.Array):  # the log's own column (payload: UTF-8 checked)
                    arrays[name] = values if values.type == kind else values.cast(kind)
                elif name in ("payload", "details") and values and type(values[0]) is bytes:
                    arrays[name] = pa.array(values, pa.binary()).cast(kind)  # JSON's bytes
                else:
                    arrays[name] = pa.array(values, kind)
            made.append(arrays[name])
        out[table.name] = pa.Table.from_arrays(made, schema=arrow_schema(table))
    return out
