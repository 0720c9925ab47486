"""The consumer base (faststream): dedup on event_id, retry with backoff, dead letters with the
original headers and the error, and no partition stalling on a poison message; and the
external-events consumer, which records valid events as integration audit entries."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import UTC, datetime
from typing import Any
from uuid import UUID, uuid4

import psycopg
import pytest
from confluent_kafka import Producer
from confluent_kafka.schema_registry import SchemaRegistryClient, record_subject_name_strategy
from confluent_kafka.schema_registry.avro import AvroSerializer
from confluent_kafka.serialization import MessageField, SerializationContext

from api.bootstrap import System
from api.streaming.external_events import ExternalEventsConsumer
from commands.external_events import audit_entry_id
from domain.audit import AuditEntry
from domain.events import Actor, EventMeta, event_id
from domain.tenant.aggregate import Tenant
from infra.kafka.codec import EventCodec
from infra.kafka.config import KafkaConfig
from infra.kafka.consumer import DomainEventConsumer, EventConsumer, make_broker
from infra.kafka.topics import ensure_topics
from tests.integration.kafka.support import HASH, headers_of, read_topic, wait_until

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]


class FlakyConsumer(DomainEventConsumer):
    """Fails `failures[event_id]` times on an event before applying it."""

    name = "flaky"

    def __init__(self, failures: dict[UUID, int], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.failures = failures
        self.applied: list[UUID] = []

    def process(self, value: Any, cur: psycopg.Cursor[Any]) -> None:
        eid = event_id(value.originator_id, value.originator_version)
        if self.failures.get(eid, 0) > 0:
            self.failures[eid] -= 1
            msg = f"transient failure on {eid}"
            raise ConnectionError(msg)
        self.applied.append(eid)


def tenant_events(count: int) -> list[Any]:
    meta = EventMeta(uuid4(), Actor("alice"), HASH)
    events = []
    for n in range(count):
        tenant = Tenant.register(
            tenant_id=uuid4(), name=f"N {n}", slug=f"n-{n}", email="a@b.test", meta=meta
        )
        events.extend(tenant.collect_events())
    return events


def produce(
    config: KafkaConfig, topic: str, messages: list[tuple[bytes, bytes, list[Any]]]
) -> None:
    producer = Producer({**config.client_conf(), "enable.idempotence": True, "acks": "all"})
    for key, value, headers in messages:
        producer.produce(topic, value, key, headers=headers)
    assert producer.flush(10) == 0


@pytest.fixture
def topic(kafka_config: KafkaConfig) -> str:
    """One partition, so "the partition goes on after a poison message" is observable."""
    name = kafka_config.topics.governance_events
    ensure_topics(kafka_config, [name, kafka_config.topics.dlq(name)], partitions=1)
    return name


@pytest.fixture
async def running() -> AsyncIterator[Callable[[EventConsumer, KafkaConfig], Any]]:
    """Start consumers on a broker of their own; stop and close them at the end."""
    started: list[tuple[Any, EventConsumer]] = []

    async def run(consumer: EventConsumer, config: KafkaConfig) -> None:
        broker = make_broker(config)
        consumer.subscribe(broker)
        await broker.start()
        started.append((broker, consumer))

    yield run
    for broker, consumer in started:
        await broker.stop()
        consumer.close()


async def test_a_poison_message_is_dead_lettered_and_the_partition_goes_on(
    system: System,
    kafka_config: KafkaConfig,
    codec: EventCodec,
    topic: str,
    unique: str,
    running: Callable[..., Any],
) -> None:
    codec.register()
    first, second = tenant_events(2)
    messages = [codec.event_message(first, topic)]
    messages.append((b"key-9", b"\x00\x00\x00\x03\xe7not avro at all", [("event_id", b"poison")]))
    messages.append(codec.event_message(second, topic))
    produce(kafka_config, topic, messages)
    consumer = FlakyConsumer(
        {},
        topic=topic,
        conninfo=system.projector_conninfo,
        config=kafka_config,
        codec=codec,
        name=f"flaky_{unique}",
    )

    await running(consumer, kafka_config)
    await wait_until(lambda: consumer.stats.processed == 2)

    assert consumer.applied == [
        event_id(e.originator_id, e.originator_version) for e in (first, second)
    ]
    dead = read_topic(kafka_config, kafka_config.topics.dlq(topic), at_least=1)
    assert len(dead) == 1
    headers = headers_of(dead[0])
    assert headers["event_id"] == b"poison"  # the original headers are kept
    assert headers["error_type"] == b"PermanentFailure"
    assert headers["dlq_source_offset"] == b"1"
    assert dead[0].value() == messages[1][1]
    assert dead[0].key() == b"key-9"


async def test_failures_are_retried_with_backoff_then_dead_lettered(
    system: System,
    kafka_config: KafkaConfig,
    codec: EventCodec,
    topic: str,
    unique: str,
    running: Callable[..., Any],
) -> None:
    codec.register()
    recovers, never, after = tenant_events(3)
    ids = [event_id(e.originator_id, e.originator_version) for e in (recovers, never, after)]
    produce(kafka_config, topic, [codec.event_message(e, topic) for e in (recovers, never, after)])
    consumer = FlakyConsumer(
        {ids[0]: 2, ids[1]: 100},
        topic=topic,
        conninfo=system.projector_conninfo,
        config=kafka_config,
        codec=codec,
        name=f"flaky_{unique}",
        max_attempts=3,
        backoff_seconds=0.01,
    )

    await running(consumer, kafka_config)
    await wait_until(lambda: consumer.stats.processed == 2)

    assert consumer.applied == [ids[0], ids[2]]
    assert (
        consumer.stats.retries >= 3
    )  # two for the second event (three attempts), some for the first
    dead = read_topic(kafka_config, kafka_config.topics.dlq(topic), at_least=1)
    assert len(dead) == 1
    headers = headers_of(dead[0])
    assert headers["event_id"] == str(ids[1]).encode()
    assert headers["event_type"] == b"tenant.created"
    assert headers["error"] == f"transient failure on {ids[1]}".encode()
    assert headers["dlq_attempts"] == b"3"


# --- external events ------------------------------------------------------------------------

PARTNER_SCHEMA = {
    "type": "record",
    "name": "ExternalEvent",
    "namespace": "com.partner.crm",
    "fields": [
        {"name": "event_id", "type": "string"},
        {"name": "event_type", "type": "string"},
        {"name": "source", "type": "string"},
        {"name": "tenant_id", "type": "string"},
        {"name": "occurred_at", "type": {"type": "long", "logicalType": "timestamp-micros"}},
        {
            "name": "actor",
            "type": {
                "type": "record",
                "name": "Actor",
                "fields": [
                    {"name": "sub", "type": "string"},
                    {"name": "roles", "type": {"type": "array", "items": "string"}},
                    {"name": "auth_method", "type": "string"},
                    {"name": "actor_type", "type": "string"},
                ],
            },
        },
        {"name": "constitutional_hash", "type": "string"},
        {"name": "payload", "type": "string"},
        {"name": "crm_region", "type": "string"},
    ],
}
WITHOUT_TENANT = {
    **PARTNER_SCHEMA,
    "namespace": "com.partner.legacy",
    "fields": [f for f in PARTNER_SCHEMA["fields"] if f["name"] != "tenant_id"],
}


def partner_event(tenant_id: UUID, **overrides: Any) -> dict[str, Any]:
    event = {
        "event_id": str(uuid4()),
        "event_type": "crm.contact_merged",
        "source": "partner-crm",
        "tenant_id": str(tenant_id),
        "occurred_at": datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),
        "actor": {"sub": "crm-bot", "roles": [], "auth_method": "api_key", "actor_type": "agent"},
        "constitutional_hash": HASH,
        "payload": json.dumps({"contact": 42}),
        "crm_region": "eu",
    }
    event.update(overrides)
    return event


@pytest.fixture
def partner_serializer(kafka_config: KafkaConfig) -> Iterator[Callable[..., bytes]]:
    registry = SchemaRegistryClient(kafka_config.registry_conf())
    conf = {"subject.name.strategy": record_subject_name_strategy}
    serializers = {
        id(schema): AvroSerializer(registry, json.dumps(schema), conf=conf)
        for schema in (PARTNER_SCHEMA, WITHOUT_TENANT)
    }
    ctx = SerializationContext(kafka_config.topics.external_events, MessageField.VALUE)

    def serialize(record: dict[str, Any], schema: dict[str, Any] = PARTNER_SCHEMA) -> bytes:
        value = serializers[id(schema)](record, ctx)
        assert value is not None
        return value

    yield serialize
    registry.close()


async def test_external_events_are_validated_and_recorded_once_as_integration_audit_entries(
    system: System,
    kafka_config: KafkaConfig,
    unique: str,
    create_tenants: Callable[[int], list[UUID]],
    partner_serializer: Callable[..., bytes],
    running: Callable[..., Any],
) -> None:
    (tenant_id,) = create_tenants(1)
    topic = kafka_config.topics.external_events
    ensure_topics(kafka_config, [topic, kafka_config.topics.dlq(topic)], partitions=1)
    valid = partner_event(tenant_id)
    without_tenant = partner_event(tenant_id)
    del without_tenant["tenant_id"]
    invalid = {
        "unknown tenant": partner_serializer(partner_event(uuid4())),
        "wrong hash": partner_serializer(partner_event(tenant_id, constitutional_hash="0" * 16)),
        "bad payload": partner_serializer(partner_event(tenant_id, payload="[1, 2]")),
        "schema without tenant_id": partner_serializer(without_tenant, WITHOUT_TENANT),
        "not avro": b'{"event_id": "x"}',
    }
    encoded = partner_serializer(valid)
    produce(
        kafka_config,
        topic,
        [(str(tenant_id).encode(), encoded, [("source", b"crm")])]
        + [(b"k", value, [("case", case.encode())]) for case, value in invalid.items()]
        + [(str(tenant_id).encode(), encoded, [("source", b"crm")])],  # redelivered duplicate
    )
    registry = SchemaRegistryClient(kafka_config.registry_conf())
    consumer = ExternalEventsConsumer(
        app=system.app,
        constitutional_hash=HASH,
        registry=registry,
        topic=topic,
        conninfo=system.projector_conninfo,
        config=kafka_config,
        name=f"external_{unique}",
    )

    await running(consumer, kafka_config)
    await wait_until(
        lambda: (
            consumer.stats.processed + consumer.stats.dead_letters + consumer.stats.duplicates == 7
        )
    )
    registry.close()

    assert (consumer.stats.processed, consumer.stats.duplicates) == (1, 1)
    entry = system.app.load(tenant_id, audit_entry_id(UUID(valid["event_id"])), AuditEntry)
    assert (entry.category, entry.action, entry.result) == (
        "integration",
        "crm.contact_merged",
        "success",
    )
    assert entry.details["payload"] == {"contact": 42}
    assert entry.target_resource == "external/partner-crm"
    dead = read_topic(kafka_config, kafka_config.topics.dlq(topic), at_least=len(invalid))
    errors = {headers_of(m)["case"].decode(): headers_of(m)["error"].decode() for m in dead}
    assert set(errors) == set(invalid)
    assert "NOT_FOUND" in errors["unknown tenant"]
    assert "CONSTITUTIONAL_HASH_MISMATCH" in errors["wrong hash"]
    assert "payload" in errors["bad payload"]
