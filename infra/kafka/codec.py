"""Avro encoding of domain events and audit records in the Confluent wire format (magic byte,
4-byte schema id, Avro body), through confluent-kafka's schema-registry serializers (fastavro
underneath). Subjects follow the record-name strategy: the subject is the record's full name.

An event becomes its envelope plus its payload fields, named as in the event class; fields
marked `"acgs.encoding": "json"` carry a JSON object as text. Decoding reverses it exactly, so
`event_from_record(decode(encode_event(e)))` equals `e`.

A record is built from an event's parts (`EventParts`), which come either from a domain event or
straight from the event's stored JSON (`parts_of_stored`, the relay's path: no domain object is
made). The stored format is the event store's: a JSON object of the event's attributes, with any
value JSON cannot hold (the timestamp, always) written as `{"_type_": name, "_data_": value}`.
`parts_of_stored` reads states whose only such value is the `datetime_iso` timestamp and that
carry no `class_version` (no upcasting needed); it answers None for any other state, which the
caller then decodes through the application's mapper. Both ways give the same record.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import re
import sys
from collections.abc import Mapping, Sequence
from datetime import datetime
from io import BytesIO
from typing import Any
from uuid import UUID

import msgspec
from confluent_kafka.schema_registry import (
    Schema,
    SchemaRegistryClient,
    record_subject_name_strategy,
)
from confluent_kafka.schema_registry.avro import AvroDeserializer, AvroSerializer
from confluent_kafka.schema_registry.error import SchemaRegistryError
from confluent_kafka.serialization import MessageField, SerializationContext
from eventsourcing.domain import DomainEvent
from eventsourcing.utils import get_topic, resolve_topic
from fastavro import parse_schema, schemaless_writer

from domain.events import ENVELOPE_FIELDS, SCHEMA_VERSION, event_id, event_type_of
from infra.kafka.schemas import (
    AUDIT_RECORD,
    AvroSchema,
    SchemaCatalog,
    domain_event_classes,
    record_name,
)

# The registry client's HTTP library logs every request at INFO; registration is routine here.
logging.getLogger("httpx2").setLevel(logging.WARNING)
_TAGGED = b'"_type_"'  # how the stored JSON marks a value JSON cannot hold
_decode_json = msgspec.json.Decoder().decode
_SERIALIZER_CONF = {
    "auto.register.schemas": True,
    "use.latest.version": False,
    "subject.name.strategy": record_subject_name_strategy,
}
Headers = list[tuple[str, bytes]]


class EncodeError(ValueError):
    """An event or record that does not fit its schema (it goes to a dead-letter topic)."""


class RegistryUnavailable(RuntimeError):
    """The schema registry could not be reached: a transient failure, retried, never a dead
    letter."""


def _registry_trouble(exc: Exception) -> bool:
    if isinstance(exc, SchemaRegistryError):
        return exc.http_status_code >= 500 or exc.http_status_code < 0
    return isinstance(exc, OSError) or type(exc).__module__.startswith(("httpx", "httpcore"))


# json.dumps with these options builds an encoder on every call; one shared encoder writes the
# same text.
_json_text = json.JSONEncoder(sort_keys=True, separators=(",", ":"), allow_nan=False).encode
_sorted_json = msgspec.json.Encoder(order="sorted").encode
# What msgspec writes differently from `_json_text`: null (it writes NaN as null), number
# exponents (1e16 against 1e+16), non-ASCII and DEL (it writes UTF-8 and a raw \x7f, not \u
# escapes). A false alarm (a digit then an "e" inside a string) only costs the slower encoder.
_DIFFERENT = re.compile(rb"null|[0-9][eE]|[^\x00-\x7e]")


def _plain_json_text(value: Any) -> str:
    """`_json_text` of a value decoded from JSON (only dicts with text keys, lists, text,
    numbers, booleans and null), about eight times faster; the same text."""
    encoded: bytes = _sorted_json(value)
    if _DIFFERENT.search(encoded) is None:
        return encoded.decode()
    return _json_text(value)


@dataclasses.dataclass(frozen=True, slots=True)
class EventParts:
    """What an event's messages are made of."""

    plan: _EventPlan
    aggregate_id: str
    version: int
    event_id: str
    timestamp: datetime
    meta: Mapping[str, Any]
    fields: Mapping[str, Any]  # the event's attributes by name (envelope ones are ignored)
    plain: bool = False  # read from the stored JSON: every value is a plain JSON value


@dataclasses.dataclass(frozen=True)
class _EventPlan:
    """How one event class maps to its record, worked out once."""

    event_class: type[DomainEvent]
    schema: AvroSchema
    event_type: str
    payload: tuple[str, ...]
    json_fields: frozenset[str]
    originator_topic: str | None


class EventCodec:
    def __init__(
        self, registry: SchemaRegistryClient, catalog: SchemaCatalog | None = None
    ) -> None:
        self.registry = registry
        self.catalog = catalog or SchemaCatalog()
        self._fast: dict[str, tuple[bytes, Any]] = {}
        self._plans: dict[type, _EventPlan] = {}
        self._audit_schema: AvroSchema | None = None
        self._by_type: dict[str, type[DomainEvent]] = {}
        self._by_stored_topic: dict[str, _EventPlan | None] = {}
        for cls in domain_event_classes():
            self._by_type[event_type_of(cls)] = cls
        self._deserializer = AvroDeserializer(
            registry, conf={"subject.name.strategy": record_subject_name_strategy}
        )

    def close(self) -> None:
        """Close the registry client's HTTP session."""
        self.registry.close()

    # --- registration -------------------------------------------------------------------------

    def register(self, compatibility: str | None = None) -> dict[str, int]:
        """Register every schema we publish (setting the subject's compatibility level first
        when given); the registry refuses an incompatible change here, before anything is sent.
        Returns the schema id of each subject."""
        ids = {}
        for schema in self.catalog.streamed():
            subject = schema.full_name
            if compatibility:
                self.registry.set_compatibility(subject_name=subject, level=compatibility)
            registered = self.registry.register_schema_full_response(
                subject, Schema(schema.text, "AVRO")
            )
            if registered.schema_id is None:  # pragma: no cover - the registry always answers one
                msg = f"the registry returned no id for {subject}"
                raise EncodeError(msg)
            ids[subject] = registered.schema_id
        return ids

    # --- events -------------------------------------------------------------------------------

    def plan(self, event_class: type) -> _EventPlan:
        plan = self._plans.get(event_class)
        if plan is None:  # worked out once per class
            schema = self.catalog.get(record_name(event_class))
            fields = [f.name for f in dataclasses.fields(event_class)]
            payload = tuple(f for f in fields if f not in ENVELOPE_FIELDS)
            missing = set(payload) - set(schema.field_names)
            if missing:
                msg = f"{schema.full_name} has no field for {sorted(missing)}"
                raise EncodeError(msg)
            owner = getattr(
                sys.modules[event_class.__module__], event_class.__qualname__.split(".")[0]
            )
            plan = _EventPlan(
                event_class,
                schema,
                event_type_of(event_class),
                payload,
                schema.json_fields,
                get_topic(owner) if "originator_topic" in fields else None,
            )
            self._plans[event_class] = plan
        return plan

    def parts_of_event(self, event: Any) -> EventParts:
        aggregate_id = str(event.originator_id)
        version = event.originator_version
        return EventParts(
            self.plan(type(event)),
            aggregate_id,
            version,
            str(event_id(aggregate_id, version)),
            event.timestamp,
            event.meta,
            vars(event),
        )

    def parts_of_stored(
        self, stored_topic: str, aggregate_id: UUID | str, version: int, state: bytes
    ) -> EventParts | None:
        """The parts of a stored event read straight from its JSON state, or None when the state
        needs the application's mapper (see the module docstring)."""
        if state.count(_TAGGED) != 1:
            return None
        plan = self._stored_plan(stored_topic)
        if plan is None:
            return None
        try:
            fields = _decode_json(state)
        except msgspec.DecodeError:  # JSON msgspec refuses (NaN, ...): the mapper decides
            return None
        if type(fields) is not dict or "class_version" in fields:
            return None
        stamp = fields["timestamp"]
        if (
            type(stamp) is not dict
            or len(stamp) != 2
            or stamp.get("_type_") != "datetime_iso"
            or type(data := stamp.get("_data_")) is not str
        ):
            return None
        aggregate = str(aggregate_id)
        return EventParts(
            plan,
            aggregate,
            version,
            str(event_id(aggregate, version)),
            datetime.fromisoformat(data),
            fields["meta"],
            fields,
            plain=True,
        )

    def _stored_plan(self, stored_topic: str) -> _EventPlan | None:
        try:
            return self._by_stored_topic[stored_topic]
        except KeyError:
            cls = resolve_topic(stored_topic)
            fits = isinstance(cls, type) and getattr(cls, "class_version", 1) == 1
            plan = self.plan(cls) if fits else None
            self._by_stored_topic[stored_topic] = plan
            return plan

    def event_record(self, event: Any) -> dict[str, Any]:
        return self.record_of(self.parts_of_event(event))

    def record_of(self, parts: EventParts) -> dict[str, Any]:
        """The Avro record of an event, from its parts."""
        plan = parts.plan
        meta = parts.meta
        actor = meta["actor"]
        record: dict[str, Any] = {
            "event_id": parts.event_id,
            "event_type": plan.event_type,
            "schema_version": SCHEMA_VERSION,
            "aggregate_id": parts.aggregate_id,
            "aggregate_version": parts.version,
            "tenant_id": str(meta["tenant_id"]),
            "occurred_at": parts.timestamp,
            "actor": {
                "sub": actor["sub"],
                "roles": list(actor.get("roles", ())),
                "auth_method": actor.get("auth_method", "system"),
                "actor_type": actor.get("actor_type", "user"),
            },
            "constitutional_hash": meta["constitutional_hash"],
            "trace_parent": meta.get("trace_parent"),
        }
        json_fields = plan.json_fields
        fields = parts.fields
        text = _plain_json_text if parts.plain else _json_text
        for name in plan.payload:
            value = fields[name]
            record[name] = text(value) if name in json_fields else value
        return record

    def encode_event(self, event: Any, topic: str) -> bytes:
        return self.event_message(event, topic)[1]

    def event_message(self, event: Any, topic: str) -> tuple[bytes, bytes, Headers]:
        """The message of an event: key (its tenant id), framed Avro value, and headers."""
        try:
            parts = self.parts_of_event(event)
        except EncodeError:
            raise
        except Exception as exc:
            raise EncodeError(f"{type(event).__qualname__}: {exc}") from exc
        return self.parts_message(parts, topic)

    def parts_message(self, parts: EventParts, topic: str) -> tuple[bytes, bytes, Headers]:
        """The message of an event given by its parts (see `event_message`)."""
        try:
            record = self.record_of(parts)
            value = self._serialize(parts.plan.schema, record, topic)
        except (EncodeError, RegistryUnavailable):
            raise
        except Exception as exc:
            raise EncodeError(f"{parts.plan.event_class.__qualname__}: {exc}") from exc
        return record["tenant_id"].encode(), value, event_headers(record)

    def event_from_record(self, record: dict[str, Any]) -> Any:
        """The domain event a decoded record stands for."""
        cls = self._by_type.get(record["event_type"])
        if cls is None:
            msg = f"unknown event type {record['event_type']!r}"
            raise ValueError(msg)
        plan = self.plan(cls)
        kwargs: dict[str, Any] = {
            "originator_id": UUID(record["aggregate_id"]),
            "originator_version": record["aggregate_version"],
            "timestamp": record["occurred_at"],
            "meta": {
                "tenant_id": record["tenant_id"],
                "actor": dict(record["actor"]),
                "constitutional_hash": record["constitutional_hash"],
                "trace_parent": record["trace_parent"],
            },
        }
        if plan.originator_topic is not None:
            kwargs["originator_topic"] = plan.originator_topic
        for name in plan.payload:
            value = record[name]
            kwargs[name] = json.loads(value) if name in plan.json_fields else value
        return cls(**kwargs)

    # --- audit records ------------------------------------------------------------------------

    def encode_audit(self, audit: dict[str, Any], topic: str) -> bytes:
        """Encode an audit record (as `projections.audit_log.audit_record` gives it)."""
        return self._audit_value(audit, topic)[1]

    def audit_message(
        self,
        audit: dict[str, Any],
        topic: str,
        extra_headers: Sequence[tuple[str, bytes]] = (),
        *,
        plain: bool = False,
    ) -> tuple[bytes, bytes, Headers]:
        """The message of an audit record: key (its tenant id), framed Avro value, and headers
        (`event_type`, `event_id` = the audit id, `constitutional_hash`, then `extra_headers`,
        e.g. the event's `traceparent`). `plain`: its details hold only plain JSON values."""
        record, value = self._audit_value(audit, topic, plain=plain)
        headers = [
            ("event_type", str(audit["event_type"]).encode()),
            ("event_id", record["audit_id"].encode()),
            ("constitutional_hash", str(audit["constitutional_hash"]).encode()),
        ]
        headers += extra_headers
        return record["tenant_id"].encode(), value, headers

    @property
    def audit_schema(self) -> AvroSchema:
        schema = self._audit_schema
        if schema is None:
            schema = self._audit_schema = self.catalog.get(AUDIT_RECORD)
        return schema

    def audit_avro_record(self, audit: dict[str, Any], *, plain: bool = False) -> dict[str, Any]:
        """The Avro record of an audit record (ids as text, `details` as JSON text)."""
        get = audit.get
        value = {name: get(name) for name in self.audit_schema.field_names}
        for name in ("audit_id", "tenant_id", "target_id"):
            field = value[name]
            if field is not None and type(field) is not str:
                value[name] = str(field)
        details = value["details"] or {}
        value["details"] = _plain_json_text(details) if plain else _json_text(details)
        return value

    def _audit_value(
        self, audit: dict[str, Any], topic: str, *, plain: bool = False
    ) -> tuple[dict[str, Any], bytes]:
        try:
            value = self.audit_avro_record(audit, plain=plain)
            return value, self._serialize(self.audit_schema, value, topic)
        except RegistryUnavailable:
            raise
        except Exception as exc:
            raise EncodeError(f"audit record: {exc}") from exc

    # --- wire format --------------------------------------------------------------------------

    def _serialize(self, schema: AvroSchema, value: dict[str, Any], topic: str) -> bytes:
        """The first record of each schema goes through confluent-kafka's AvroSerializer, which
        looks the schema up in the registry (registering it if needed) and frames the record.
        Later records reuse that frame (magic byte and schema id) around fastavro's encoding:
        the serializer's own last step, without its per-call subject resolution. The bytes are
        identical (tests compare them)."""
        fast = self._fast.get(schema.full_name)
        if fast is not None:
            frame, parsed = fast
            buffer = BytesIO()
            buffer.write(frame)
            schemaless_writer(buffer, parsed, value)
            written: bytes = buffer.getvalue()
            return written
        serializer = AvroSerializer(self.registry, schema.text, conf=_SERIALIZER_CONF)
        try:
            encoded = serializer(value, SerializationContext(topic, MessageField.VALUE))
        except Exception as exc:
            if _registry_trouble(exc):
                raise RegistryUnavailable(str(exc)) from exc
            raise
        if encoded is None:  # pragma: no cover - only for a None value
            raise EncodeError("nothing to encode")
        self._fast[schema.full_name] = (encoded[:5], parse_schema(json.loads(schema.text)))
        return bytes(encoded)

    def serialize_with_registry(
        self, schema: AvroSchema, value: dict[str, Any], topic: str
    ) -> bytes:
        """Always through the AvroSerializer (to check the fast path against it)."""
        serializer = AvroSerializer(self.registry, schema.text, conf=_SERIALIZER_CONF)
        encoded = serializer(value, SerializationContext(topic, MessageField.VALUE))
        return bytes(encoded or b"")

    def decode(self, value: bytes, topic: str) -> dict[str, Any]:
        """A framed Avro value as a dict, read with the writer's schema from the registry."""
        decoded = self._deserializer(value, SerializationContext(topic, MessageField.VALUE))
        if not isinstance(decoded, dict):
            msg = "the value is not an Avro record"
            raise TypeError(msg)
        return decoded


def header_list(headers: Any) -> Headers:
    """Kafka headers as (name, bytes) pairs, whichever form the client gave them in."""
    items = headers.items() if isinstance(headers, dict) else (headers or ())
    return [(str(k), v.encode() if isinstance(v, str) else (v or b"")) for k, v in items]


def traceparent(record: dict[str, Any]) -> str:
    """The W3C `traceparent` of an event's messages: the one recorded with the event (the
    request's) when it has one; else one derived from its event id (trace id: the id's 32 hex
    digits, parent id: its last 16, flags 00, not sampled, as no span was recorded), so every
    message can be correlated and a re-published event carries the same header."""
    recorded = record.get("trace_parent")
    if recorded:
        return str(recorded)
    digits = record["event_id"].replace("-", "")  # a canonical UUID's 32 hex digits
    return f"00-{digits}-{digits[16:]}-00"


def event_headers(record: dict[str, Any]) -> Headers:
    """Kafka headers of an event's message: `event_type`, `event_id`, `constitutional_hash` and
    `traceparent` (see `traceparent`)."""
    return [
        ("event_type", record["event_type"].encode()),
        ("event_id", record["event_id"].encode()),
        ("constitutional_hash", record["constitutional_hash"].encode()),
        ("traceparent", traceparent(record).encode()),
    ]
