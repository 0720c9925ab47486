"""The relay under faults: a crash between publishing and moving the position, a broker that goes
away, events that cannot be encoded. Nothing is lost; duplicates are delivered, never applied
twice; per-tenant order holds across partitions."""

from __future__ import annotations

import shutil
import threading
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any
from uuid import UUID

import psycopg
import pytest
from confluent_kafka import Producer
from confluent_kafka.schema_registry import SchemaRegistryClient

from api.bootstrap import System
from domain.events import event_id
from domain.tenant.aggregate import Tenant
from infra.kafka.codec import EventCodec
from infra.kafka.config import KafkaConfig
from infra.kafka.consumer import DomainEventConsumer, make_broker
from infra.kafka.local_broker import TansuBroker
from infra.kafka.relay import KafkaRelay
from infra.kafka.schemas import SCHEMA_DIR, SchemaCatalog
from tests.integration.kafka.support import (
    PLATFORM,
    headers_of,
    log_head,
    read_topic,
    stored_events_after,
    wait_until,
    wait_until_sync,
)

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]


class SimulatedCrash(Exception):
    pass


class RecordingConsumer(DomainEventConsumer):
    name = "recording"

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.applied: list[UUID] = []

    def process(self, value: Any, cur: psycopg.Cursor[Any]) -> None:
        self.applied.append(event_id(value.originator_id, value.originator_version))


def ids_of(events: list[Any]) -> list[UUID]:
    return [event_id(e.originator_id, e.originator_version) for e in events]


class RelayWatch:
    """Events instead of waiting: counts the relay's polls of its producer that found messages
    still unacknowledged, its failed attempts to prepare, and records every position it
    commits, each tagged with whether the broker was away at that moment."""

    def __init__(self, relay: KafkaRelay) -> None:
        self.broker_away = threading.Event()
        self.unacknowledged_polls = 0
        self.failed_prepares = 0
        self.advances: list[tuple[int, bool]] = []
        real_producer, real_advance, real_prepare = relay.producer, relay._advance, relay.prepare
        watch = self

        class WatchedProducer:
            def __init__(self, real: Any) -> None:
                self._real = real

            def flush(self, *args: Any) -> int:
                left = int(self._real.flush(*args))
                if left > 0:
                    watch.unacknowledged_polls += 1
                return left

            def poll(self, *args: Any) -> int:
                served = int(self._real.poll(*args))
                if len(self._real) > 0:  # messages still waiting for the broker's answer
                    watch.unacknowledged_polls += 1
                return served

            def __getattr__(self, name: str) -> Any:
                return getattr(self._real, name)

        def advance(position: int) -> None:
            self.advances.append((position, self.broker_away.is_set()))
            real_advance(position)

        def prepare() -> None:
            try:
                real_prepare()
            except Exception:
                self.failed_prepares += 1
                raise

        relay.producer = lambda: WatchedProducer(real_producer())  # type: ignore[method-assign]
        relay._advance = advance  # type: ignore[method-assign]
        relay.prepare = prepare  # type: ignore[method-assign]

    def advanced_while_away(self) -> list[int]:
        return [position for position, away in self.advances if away]


async def test_a_crash_before_the_position_moves_gives_duplicates_that_consumers_skip(
    system: System,
    kafka_config: KafkaConfig,
    codec: EventCodec,
    make_relay: Callable[..., KafkaRelay],
    every_event_type: Callable[[], UUID],
    unique: str,
) -> None:
    crashed = make_relay()
    start = crashed.position()
    every_event_type()
    stored = stored_events_after(system, start)

    def crash(position: int) -> None:
        raise SimulatedCrash(position)

    crashed._advance = crash  # type: ignore[method-assign]  # dies after delivery, before commit
    with pytest.raises(SimulatedCrash):
        crashed.step()
    crashed.close()
    restarted = make_relay()
    assert restarted.position() == start
    restarted.catch_up()

    topic = kafka_config.topics.governance_events
    messages = read_topic(kafka_config, topic, at_least=2 * len(stored))
    delivered = [UUID(headers_of(m)["event_id"].decode()) for m in messages]
    assert sorted(delivered) == sorted(ids_of(stored) * 2)  # each twice: duplicates, no loss

    consumer = RecordingConsumer(
        topic=topic,
        conninfo=system.projector_conninfo,
        config=kafka_config,
        codec=codec,
        name=f"recording_{unique}",
    )
    broker = make_broker(kafka_config)
    consumer.subscribe(broker)
    async with broker:
        await broker.start()
        await wait_until(
            lambda: consumer.stats.processed + consumer.stats.duplicates >= 2 * len(stored)
        )
    consumer.close()
    assert sorted(consumer.applied) == sorted(ids_of(stored))  # each applied exactly once
    assert consumer.stats.duplicates == len(stored)
    assert consumer.stats.dead_letters == 0


@pytest.fixture
def own_broker(tmp_path: Path) -> Iterator[TansuBroker]:
    """A broker of the test's own, so stopping it disturbs no other test."""
    broker = TansuBroker(log_path=tmp_path / "tansu.log")
    broker.start()
    yield broker
    broker.stop()


def test_the_relay_waits_for_a_frozen_broker_and_catches_up(
    system: System,
    kafka_config: KafkaConfig,
    own_broker: TansuBroker,
    make_relay: Callable[..., KafkaRelay],
    create_tenants: Callable[[int], list[UUID]],
) -> None:
    config = replace(kafka_config, bootstrap_servers=own_broker.bootstrap_servers)
    relay = make_relay(config)
    watch = RelayWatch(relay)
    start = relay.position()
    stop = threading.Event()
    thread = threading.Thread(target=relay.run, args=(stop, 0.1), daemon=True)
    thread.start()
    try:
        create_tenants(3)
        wait_until_sync(lambda: relay.position() == log_head(system))
        held = relay.position()
        own_broker.pause()
        watch.broker_away.set()
        create_tenants(5)
        head = log_head(system)
        # the relay has produced the new events and polled for their acknowledgement several
        # times without getting it; it has not moved its position
        wait_until_sync(lambda: watch.unacknowledged_polls >= 3, timeout=60)
        assert relay.position() == held < head
        watch.broker_away.clear()  # from here on an advance may be legitimate
        own_broker.resume()
        wait_until_sync(lambda: relay.position() == head, timeout=60)
        assert watch.advanced_while_away() == []  # not one commit while the broker was away
    finally:
        stop.set()
        thread.join(timeout=10)
    stored = stored_events_after(system, start)
    messages = read_topic(config, config.topics.governance_events, at_least=len(stored))
    delivered = {UUID(headers_of(m)["event_id"].decode()) for m in messages}
    assert delivered == set(ids_of(stored))


def test_the_relay_waits_for_a_broker_that_is_not_there_and_catches_up(
    system: System,
    kafka_config: KafkaConfig,
    make_relay: Callable[..., KafkaRelay],
    create_tenants: Callable[[int], list[UUID]],
    tmp_path: Path,
) -> None:
    broker = TansuBroker(log_path=tmp_path / "tansu.log")
    config = replace(kafka_config, bootstrap_servers=broker.bootstrap_servers)
    relay = make_relay(config, prepare=False)  # its broker has not started: connection refused
    watch = RelayWatch(relay)
    watch.broker_away.set()
    start = relay.position()
    stop = threading.Event()
    thread = threading.Thread(target=relay.run, args=(stop, 0.1), daemon=True)
    thread.start()
    try:
        create_tenants(4)
        # the relay tried (and failed) to reach the broker once more after the events
        # were recorded, and published nothing meanwhile
        tried = watch.failed_prepares
        wait_until_sync(lambda: watch.failed_prepares >= tried + 1, timeout=60)
        assert relay.position() == start
        watch.broker_away.clear()  # from here on an advance may be legitimate
        broker.start()
        wait_until_sync(lambda: relay.position() == log_head(system), timeout=60)
        assert watch.advanced_while_away() == []  # not one commit before the broker existed
    finally:
        stop.set()
        thread.join(timeout=10)
        stored = stored_events_after(system, start)
        messages = read_topic(config, config.topics.governance_events, at_least=len(stored))
        broker.stop()
    delivered = {UUID(headers_of(m)["event_id"].decode()) for m in messages}
    assert delivered == set(ids_of(stored))


def test_an_event_that_cannot_be_encoded_is_dead_lettered_and_the_stream_goes_on(
    system: System,
    kafka_config: KafkaConfig,
    codec: EventCodec,
    make_relay: Callable[..., KafkaRelay],
    create_tenants: Callable[[int], list[UUID]],
    tmp_path: Path,
) -> None:
    shutil.copytree(SCHEMA_DIR, tmp_path / "avro")
    (tmp_path / "avro" / "tenant" / "Suspended.avsc").unlink()  # deployed without its schema
    relay = make_relay()
    relay.codec.close()
    relay.codec = EventCodec(
        SchemaRegistryClient(kafka_config.registry_conf()), SchemaCatalog(tmp_path / "avro")
    )
    start = relay.position()
    first, _ = create_tenants(2)
    system.tenants.update(PLATFORM, first, {"status": "suspended"})
    create_tenants(1)
    stored = stored_events_after(system, start)

    relay.catch_up()

    assert relay.position() == log_head(system)
    topics = kafka_config.topics
    dead = read_topic(kafka_config, topics.dlq(topics.governance_events), at_least=1)
    published = read_topic(kafka_config, topics.governance_events, at_least=len(stored) - 1)
    suspended = [e for e in stored if isinstance(e, Tenant.Suspended)]
    assert len(dead) == 1
    assert len(suspended) == 1
    headers = headers_of(dead[0])
    assert headers["event_id"] == str(ids_of(suspended)[0]).encode()
    assert b"acgs.events.tenant.Suspended" in headers["error"]
    assert dead[0].key() == str(first).encode()
    assert {UUID(headers_of(m)["event_id"].decode()) for m in published} == set(
        ids_of([e for e in stored if not isinstance(e, Tenant.Suspended)])
    )
    assert relay.stats.dead_letters == 1


def test_each_tenant_keeps_its_order_across_partitions(
    system: System,
    kafka_config: KafkaConfig,
    codec: EventCodec,
    make_relay: Callable[..., KafkaRelay],
    create_tenants: Callable[[int], list[UUID]],
) -> None:
    relay = make_relay(replace(kafka_config, relay_batch_size=7))
    tenants = create_tenants(12)
    for round_ in range(3):
        for tid in tenants:
            system.tenants.update(PLATFORM, tid, {"max_storage_gb": 10 + round_ + 1})
    expected = 12 * 4

    relay.catch_up()

    messages = read_topic(kafka_config, kafka_config.topics.governance_events, at_least=expected)
    by_tenant: dict[bytes, list[Any]] = defaultdict(list)
    for msg in sorted(messages, key=lambda m: (m.partition(), m.offset())):
        by_tenant[msg.key()].append(msg)
    assert set(by_tenant) == {str(t).encode() for t in tenants}
    partitions_used = set()
    for msgs in by_tenant.values():
        partitions_used |= {m.partition() for m in msgs}
        assert len({m.partition() for m in msgs}) == 1
        versions = [codec.decode(m.value(), m.topic())["aggregate_version"] for m in msgs]
        assert versions == [1, 2, 3, 4]
    assert len(partitions_used) > 1


def test_a_full_local_queue_waits_for_the_broker_and_loses_nothing(
    system: System,
    kafka_config: KafkaConfig,
    make_relay: Callable[..., KafkaRelay],
    create_tenants: Callable[[int], list[UUID]],
) -> None:
    relay = make_relay()
    # a producer whose local queue holds one message: every further one waits for the broker
    relay._producer_factory = lambda conf: Producer({**conf, "queue.buffering.max.messages": 1})
    start = relay.position()
    create_tenants(2)
    stored = stored_events_after(system, start)

    assert relay.step() == len(stored)  # one batch
    assert relay.step() == 0

    assert relay.position() == log_head(system)
    topics = kafka_config.topics
    published = read_topic(kafka_config, topics.governance_events, at_least=len(stored))
    audits = read_topic(kafka_config, topics.audit_trail, at_least=len(stored))
    assert sorted(UUID(headers_of(m)["event_id"].decode()) for m in published) == sorted(
        ids_of(stored)
    )
    assert len(audits) == len(stored)
    relay.reset()
    assert relay.position() == 0


def test_an_audit_record_that_cannot_be_encoded_is_dead_lettered_and_its_event_published(
    system: System,
    kafka_config: KafkaConfig,
    make_relay: Callable[..., KafkaRelay],
    create_tenants: Callable[[int], list[UUID]],
    tmp_path: Path,
) -> None:
    shutil.copytree(SCHEMA_DIR, tmp_path / "avro")
    (tmp_path / "avro" / "audit" / "AuditRecord.avsc").unlink()  # deployed without its schema
    relay = make_relay()
    relay.codec.close()
    relay.codec = EventCodec(
        SchemaRegistryClient(kafka_config.registry_conf()), SchemaCatalog(tmp_path / "avro")
    )
    start = relay.position()
    create_tenants(1)
    stored = stored_events_after(system, start)

    relay.catch_up()

    topics = kafka_config.topics
    published = read_topic(kafka_config, topics.governance_events, at_least=len(stored))
    dead = read_topic(kafka_config, topics.dlq(topics.audit_trail), at_least=len(stored))
    assert len(published) == len(dead) == len(stored)
    assert {headers_of(m)["event_id"] for m in dead} == {str(i).encode() for i in ids_of(stored)}
    assert {headers_of(m)["dlq_source_topic"] for m in dead} == {topics.audit_trail.encode()}
    assert relay.stats.dead_letters == len(stored)
    assert relay.stats.messages == len(stored)  # the events only
