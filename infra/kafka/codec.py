"""Avro encoding of domain events and audit records in the Confluent wire format (magic byte,
4-byte schema id, Avro body), through confluent-kafka's schema-registry serializers (fastavro
underneath). Subjects follow the record-name strategy: the subject is the record's full name.

An event becomes its envelope (decisions 8) plus its payload fields, named as in the event class;
fields marked `"acgs.encoding": "json"` carry a JSON object as text. Decoding reverses it exactly,
so `event_from_record(decode(encode_event(e)))` equals `e`.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import sys
from collections.abc import Sequence
from io import BytesIO
from typing import Any
from uuid import UUID

from confluent_kafka.schema_registry import (
    Schema,
    SchemaRegistryClient,
    record_subject_name_strategy,
)
from confluent_kafka.schema_registry.avro import AvroDeserializer, AvroSerializer
from confluent_kafka.schema_registry.error import SchemaRegistryError
from confluent_kafka.serialization import MessageField, SerializationContext
from eventsourcing.domain import DomainEvent
from eventsourcing.utils import get_topic
from fastavro import parse_schema, schemaless_writer

from domain.events import SCHEMA_VERSION, event_id, event_type
from infra.kafka.schemas import (
    AUDIT_RECORD,
    AvroSchema,
    SchemaCatalog,
    domain_event_classes,
    record_name,
)

# The registry client's HTTP library logs every request at INFO; registration is routine here.
logging.getLogger("httpx2").setLevel(logging.WARNING)
_ENVELOPE_ATTRIBUTES = frozenset(
    {"originator_id", "originator_version", "timestamp", "originator_topic", "meta"}
)
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
        for cls in domain_event_classes():
            self._by_type[event_type(object.__new__(cls))] = cls
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
            payload = tuple(f for f in fields if f not in _ENVELOPE_ATTRIBUTES)
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
                event_type(object.__new__(event_class)),
                payload,
                schema.json_fields,
                get_topic(owner) if "originator_topic" in fields else None,
            )
            self._plans[event_class] = plan
        return plan

    def event_record(self, event: Any) -> dict[str, Any]:
        plan = self.plan(type(event))
        meta = event.meta
        actor = meta["actor"]
        aggregate_id = str(event.originator_id)
        version = event.originator_version
        record: dict[str, Any] = {
            "event_id": str(event_id(aggregate_id, version)),
            "event_type": plan.event_type,
            "schema_version": SCHEMA_VERSION,
            "aggregate_id": aggregate_id,
            "aggregate_version": version,
            "tenant_id": str(meta["tenant_id"]),
            "occurred_at": event.timestamp,
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
        for name in plan.payload:
            value = getattr(event, name)
            record[name] = _json_text(value) if name in json_fields else value
        return record

    def encode_event(self, event: Any, topic: str) -> bytes:
        return self.event_message(event, topic)[1]

    def event_message(self, event: Any, topic: str) -> tuple[bytes, bytes, Headers]:
        """The message of an event: key (its tenant id), framed Avro value, and headers."""
        try:
            plan = self.plan(type(event))
            record = self.event_record(event)
            value = self._serialize(plan.schema, record, topic)
        except (EncodeError, RegistryUnavailable):
            raise
        except Exception as exc:
            raise EncodeError(f"{type(event).__qualname__}: {exc}") from exc
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
        self, audit: dict[str, Any], topic: str, extra_headers: Sequence[tuple[str, bytes]] = ()
    ) -> tuple[bytes, bytes, Headers]:
        """The message of an audit record: key (its tenant id), framed Avro value, and headers
        (`event_type`, `event_id` = the audit id, `constitutional_hash`, then `extra_headers`,
        e.g. the event's `traceparent`)."""
        record, value = self._audit_value(audit, topic)
        headers = [
            ("event_type", str(audit["event_type"]).encode()),
            ("event_id", record["audit_id"].encode()),
            ("constitutional_hash", str(audit["constitutional_hash"]).encode()),
        ]
        headers += extra_headers
        return record["tenant_id"].encode(), value, headers

    def _audit_value(self, audit: dict[str, Any], topic: str) -> tuple[dict[str, Any], bytes]:
        schema = self._audit_schema
        if schema is None:
            schema = self._audit_schema = self.catalog.get(AUDIT_RECORD)
        try:
            get = audit.get
            value = {name: get(name) for name in schema.field_names}
            for name in ("audit_id", "tenant_id", "target_id"):
                field = value[name]
                if field is not None and type(field) is not str:
                    value[name] = str(field)
            value["details"] = _json_text(value["details"] or {})
            return value, self._serialize(schema, value, topic)
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
    digits = UUID(record["event_id"]).hex
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
