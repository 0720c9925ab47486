"""Kafka consumers run as one supervised worker (`ConsumerWorker`): in a thread with an event
loop of its own, until asked to stop; and `acgs serve` / `acgs worker` put the external-events
consumer in their worker list when streaming is on."""

from __future__ import annotations

import threading
import time
from dataclasses import replace
from typing import Any
from uuid import UUID, uuid4

import psycopg
import pytest

from api.bootstrap import EXTERNAL_EVENTS, System, build
from api.settings import Settings
from domain.constitution import DEFAULT_CONSTITUTIONAL_HASH
from domain.events import Actor, EventMeta, event_id
from domain.tenant.aggregate import Tenant
from infra.kafka.codec import EventCodec
from infra.kafka.config import KafkaConfig
from infra.kafka.consumer import ConsumerWorker, DomainEventConsumer
from infra.kafka.topics import ensure_topics
from tests.integration.kafka.test_consumers import produce

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]


class Recording(DomainEventConsumer):
    name = "recording_worker"

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.applied: list[UUID] = []

    def process(self, value: Any, cur: psycopg.Cursor[Any]) -> None:
        self.applied.append(event_id(value.originator_id, value.originator_version))


def test_consumers_run_in_their_own_thread_until_stopped(
    system: System, kafka_config: KafkaConfig, codec: EventCodec, unique: str
) -> None:
    topic = kafka_config.topics.governance_events
    ensure_topics(kafka_config, [topic, kafka_config.topics.dlq(topic)], partitions=1)
    meta = EventMeta(uuid4(), Actor("alice"), DEFAULT_CONSTITUTIONAL_HASH)
    events = [
        e
        for n in range(3)
        for e in Tenant.register(
            tenant_id=uuid4(), name=f"W {n}", slug=f"w-{n}", email="a@b.test", meta=meta
        ).collect_events()
    ]
    produce(kafka_config, topic, [codec.event_message(e, topic) for e in events])
    consumer = Recording(
        topic=topic,
        conninfo=system.projector_conninfo,
        config=kafka_config,
        codec=codec,
        name=f"worker_{unique}",
    )
    worker = ConsumerWorker([consumer], kafka_config, client_id=f"test-{unique}")
    stop = threading.Event()
    thread = threading.Thread(target=worker.run, args=(stop,), daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 30
        while len(consumer.applied) < len(events) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert sorted(consumer.applied) == sorted(
            event_id(e.originator_id, e.originator_version) for e in events
        )
    finally:
        stop.set()
        thread.join(20)
        worker.close()
    assert not thread.is_alive()


def test_a_streaming_deployment_runs_the_external_events_consumer(
    settings: Settings, kafka_config: KafkaConfig, tmp_path: Any
) -> None:
    streaming = replace(
        settings,
        data_dir=tmp_path,
        kafka_bootstrap_servers=kafka_config.bootstrap_servers,
        schema_registry_url=kafka_config.schema_registry_url,
    )
    system = build(streaming)
    try:
        assert system.worker_names()[-8:] == [
            "kafka_relay",
            "integration_health",
            "role_cache",
            "sinks",
            "webhook_deliveries",
            "warehouses",
            "migration_jobs",
            EXTERNAL_EVENTS,
        ]
        started = system.start_workers([EXTERNAL_EVENTS])
        assert started == [EXTERNAL_EVENTS]
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            (status,) = system.worker_status()
            if status.state == "running":
                break
            time.sleep(0.05)
        assert status.state == "running"
    finally:
        system.close()
    assert system.worker_status()[0].state == "stopped"
