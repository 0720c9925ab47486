"""The `external-events` consumer: events from other systems, validated against their schema and
recorded as audit entries of category `integration`. Invalid ones go to `external-events.dlq`.

A message must be Confluent-framed Avro whose writer schema (fetched from the registry by its id)
resolves to our reader schema `acgs.events.external.ExternalEvent`: same field names, extra
fields ignored, missing ones only where the reader has a default.

It is an entry point like an HTTP handler: it calls the write side (`record_external_event`),
which writes through the event store, not through the dedup transaction's cursor. A redelivered
event is still recorded once, because the audit entry's id is derived from the external event's
id and the store refuses a second version 1 of it.
"""

from __future__ import annotations

from typing import Any, ClassVar

import psycopg
from confluent_kafka.schema_registry import SchemaRegistryClient, record_subject_name_strategy
from confluent_kafka.schema_registry.avro import AvroDeserializer
from confluent_kafka.serialization import MessageField, SerializationContext
from fastavro.read import SchemaResolutionError

from commands.application import GovernanceApplication
from commands.external_events import ExternalEvent, record_external_event
from domain.errors import DomainError
from infra.kafka.consumer import Decoded, EventConsumer, Headers, PermanentFailure, is_permanent
from infra.kafka.schemas import EXTERNAL_EVENT, SchemaCatalog


class ExternalEventsConsumer(EventConsumer):
    name: ClassVar[str] = "external_events"
    description: ClassVar[str] = (
        "Events from other systems (Avro, any registered schema that resolves to "
        "acgs.events.external.ExternalEvent), recorded as integration audit entries."
    )

    def __init__(
        self,
        *,
        app: GovernanceApplication,
        constitutional_hash: str,
        registry: SchemaRegistryClient,
        catalog: SchemaCatalog | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.app = app
        self.registry = registry
        self.constitutional_hash = constitutional_hash
        reader = (catalog or SchemaCatalog()).get(EXTERNAL_EVENT).text
        self._deserializer = AvroDeserializer(
            registry,
            schema_str=reader,
            conf={"subject.name.strategy": record_subject_name_strategy},
        )
        self._context = SerializationContext(self.topic, MessageField.VALUE)

    def decode(self, value: bytes | None, headers: Headers) -> Decoded:
        del headers
        try:
            record = self._deserializer(value or b"", self._context)
        except Exception as exc:
            if is_permanent(exc) or isinstance(exc, SchemaResolutionError):
                raise PermanentFailure(f"not a valid external event: {exc}") from exc
            raise
        if not isinstance(record, dict):
            raise PermanentFailure("not a valid external event: not a record")
        try:
            event = ExternalEvent.from_record(record)
        except DomainError as exc:
            raise PermanentFailure(exc.message) from exc
        return Decoded(event.event_id, event)

    def process(self, value: Any, cur: psycopg.Cursor[Any]) -> None:
        del cur  # the entry is written through the event store (idempotent by its derived id)
        try:
            record_external_event(self.app, self.constitutional_hash, value)
        except DomainError as exc:
            raise PermanentFailure(f"{exc.code}: {exc.message}") from exc
