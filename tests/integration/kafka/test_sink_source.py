"""A SIEM sink fed from its own Kafka consumer group (streaming on), over the real Tansu broker,
the real relay and the strict Splunk HEC double: the records are the ones the log path makes
(enriched the same way), and a sink killed mid-round resumes from its committed offsets without
losing anything."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any
from uuid import UUID

import psycopg
import pytest
from confluent_kafka import KafkaError, KafkaException, Producer

from api.bootstrap import System, build
from api.settings import Settings
from commands.integrations import CreateIntegration
from commands.tenants import CreateTenant
from domain.events import event_id
from infra.kafka.config import KafkaConfig
from infra.kafka.relay import KafkaRelay
from infra.kafka.sink_source import KafkaSinkSource, sink_group
from infra.postgres.follower import LogFollower
from projections.sinks.records import RecordMaker
from projections.sinks.runner import SinkRunner
from tests.integration.kafka.support import PLATFORM, headers_of, read_topic
from tests.integration.spine.support import catch_up
from tests.peers.splunk_hec import HecDouble

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]


def _sink(system: System, hec: HecDouble, unique: str, **extra: Any) -> tuple[UUID, UUID]:
    """A tenant and its Splunk HEC sink; returns (tenant id, integration id)."""
    tenant = system.tenants.create(
        PLATFORM, CreateTenant(f"Sink {unique}", f"k-{unique}", "admin@example.com")
    )
    assert system.integrations is not None
    config = {
        "kind": "splunk_hec",
        "url": hec.url,
        "token": hec.token,
        "batch_max_wait_ms": 0,
        "max_attempts": 2,
        "retry_initial_ms": 1,
        **extra,
    }
    made = system.integrations.create(
        PLATFORM, tenant.id, CreateIntegration("siem", "Splunk", config)
    )
    return tenant.id, made.id


def _touch(system: System, tenant_id: UUID, count: int) -> None:
    for n in range(count):
        system.tenants.update(PLATFORM, tenant_id, {"max_storage_gb": 100 + n})


def _tenant_events(system: System, tenant_id: UUID, after: int) -> list[tuple[Any, ...]]:
    with psycopg.connect(system.projector_conninfo, autocommit=True) as conn:
        return conn.execute(
            "SELECT notification_id, originator_id, originator_version, topic, state, tenant_id, "
            "recorded_at FROM governance_events WHERE tenant_id = %s AND notification_id > %s "
            "ORDER BY notification_id",
            [tenant_id, after],
        ).fetchall()


def _until(runner: SinkRunner, done: Callable[[], bool], timeout: float = 40.0) -> None:
    deadline = time.monotonic() + timeout
    while not done() and time.monotonic() < deadline:
        runner.catch_up()
    assert done()


class _KilledAfter:
    """Delivers `after` batches for real, then dies (as a killed process would) in the middle
    of the next one: that batch is not acknowledged, and neither is anything after it."""

    def __init__(self, sink: Any, after: int) -> None:
        self.sink = sink
        self.left = after

    def deliver(self, records: Any) -> Any:
        if self.left == 0:
            raise KeyboardInterrupt
        self.left -= 1
        return self.sink.deliver(records)

    def close(self) -> None:
        self.sink.close()


def test_a_sink_reads_its_consumer_group_and_delivers_the_log_paths_records(
    system: System,
    kafka_config: KafkaConfig,
    make_relay: Callable[..., KafkaRelay],
    hec: HecDouble,
    unique: str,
) -> None:
    tenant_id, sink_id = _sink(system, hec, unique)
    relay = make_relay()  # publishes from the head: the tenant's creation is not on the topic
    start = relay.position()
    _touch(system, tenant_id, 6)
    other = system.tenants.create(  # another tenant's events: out of the sink's scope
        PLATFORM, CreateTenant(f"Other {unique}", f"o-{unique}", "admin@example.com")
    )
    _touch(system, other.id, 2)
    relay.catch_up()
    catch_up(system)  # the read models (the tenants' slugs)
    rows = _tenant_events(system, tenant_id, start)
    assert len(rows) == 6
    messages = read_topic(
        kafka_config, kafka_config.topics.governance_events, at_least=len(rows) + 4
    )
    positions = {m.value(): headers_of(m)["log_position"] for m in messages}
    assert sorted(int(p) for p in positions.values()) == sorted(
        n for (n,) in _all_after(system, start)
    )

    runner = system.sink_runner(tenant_id, sink_id, kafka=kafka_config)
    assert isinstance(runner.source, KafkaSinkSource)
    assert runner.source.group_id == sink_group(sink_id) == f"acgs-sink-{sink_id}"
    try:
        _until(runner, lambda: len(hec.received_ids()) >= len(rows))
    finally:
        runner.close()
    expected = RecordMaker(system.app.mapper, lambda _: f"k-{unique}")(rows)
    assert hec.received_ids() == [r.event_id for r in expected]  # one partition per tenant: order
    for record in expected:
        received = hec.events[record.event_id]["event"]
        assert received == record.body  # the very records the log path makes
        assert received["tenant_slug"] == f"k-{unique}"
        assert received["actor_roles"] == ["EXECUTIVE"]
        assert received["constitutional_hash"] == system.settings.constitutional_hash
    assert [r.position for r in expected] == [int(r[0]) for r in rows]
    assert hec.duplicates == 0
    follower = LogFollower(system.projector_conninfo, runner.name)
    try:
        assert follower.position() >= int(rows[-1][0])  # what the deliveries view shows
    finally:
        follower.close()


def _all_after(system: System, position: int) -> list[tuple[int]]:
    with psycopg.connect(system.projector_conninfo, autocommit=True) as conn:
        return conn.execute(
            "SELECT notification_id FROM governance_events WHERE notification_id > %s",
            [position],
        ).fetchall()


def test_a_sink_killed_mid_round_resumes_from_its_committed_offsets_without_loss(
    system: System,
    kafka_config: KafkaConfig,
    make_relay: Callable[..., KafkaRelay],
    hec: HecDouble,
    unique: str,
) -> None:
    tenant_id, sink_id = _sink(system, hec, unique, batch_size=2)
    relay = make_relay()
    start = relay.position()
    _touch(system, tenant_id, 9)
    relay.catch_up()
    expected = [str(event_id(r[1], r[2])) for r in _tenant_events(system, tenant_id, start)]
    # A message no sink can read (no log position) is dead-lettered, not a stall.
    topic = kafka_config.topics.governance_events
    producer = Producer(kafka_config.client_conf())
    producer.produce(topic, b"\x00garbage", str(tenant_id).encode())
    assert producer.flush(10) == 0

    first = system.sink_runner(tenant_id, sink_id, kafka=kafka_config)
    first.sink = _KilledAfter(first.sink, after=2)
    first.read_limit = 2  # rounds of two: confirmed rounds commit while the next is read
    try:
        with pytest.raises(KeyboardInterrupt):
            _until(first, lambda: False)
    finally:
        first.close()
    delivered_first = len(hec.received_ids())
    assert delivered_first == 4

    second = system.sink_runner(tenant_id, sink_id, kafka=kafka_config)
    try:
        _until(second, lambda: set(hec.received_ids()) == set(expected))
        assert second.stats.dead_lettered == 0
    finally:
        second.close()
    again = hec.duplicates
    assert hec.received_ids() == expected  # nothing lost, in the tenant's order
    assert hec.duplicates <= delivered_first  # at most what was not confirmed comes again

    third = system.sink_runner(tenant_id, sink_id, kafka=kafka_config)
    try:
        third.catch_up()
        third.catch_up()
    finally:
        third.close()
    assert hec.duplicates == again  # committed offsets: nothing comes a third time
    dead = read_topic(kafka_config, kafka_config.topics.dlq(topic), at_least=1)
    assert {m.value() for m in dead} == {b"\x00garbage"}  # once per unconfirmed reading
    assert headers_of(dead[0])["dlq_consumer"] == f"sink_{sink_id.hex}".encode()
    assert headers_of(dead[0])["error"] == b"no log_position header"


def test_a_streaming_deployment_runs_its_sinks_from_kafka(
    settings: Settings, kafka_config: KafkaConfig, hec: HecDouble, unique: str, tmp_path: Any
) -> None:
    streaming = build(
        replace(
            settings,
            data_dir=tmp_path,
            kafka_bootstrap_servers=kafka_config.bootstrap_servers,
            schema_registry_url=kafka_config.schema_registry_url,
        )
    )
    try:
        tenant_id, sink_id = _sink(streaming, hec, unique)
        runner = streaming.sink_runner(tenant_id, sink_id)
        try:
            assert isinstance(runner.source, KafkaSinkSource)
            assert runner.source.group_id == f"acgs-sink-{sink_id}"
        finally:
            runner.close()
    finally:
        streaming.close()


def test_a_round_read_again_starts_from_the_committed_offsets(
    system: System,
    kafka_config: KafkaConfig,
    make_relay: Callable[..., KafkaRelay],
    hec: HecDouble,
    unique: str,
) -> None:
    tenant_id, sink_id = _sink(system, hec, unique)
    relay = make_relay()
    _touch(system, tenant_id, 3)
    relay.catch_up()
    runner = system.sink_runner(tenant_id, sink_id, kafka=kafka_config)
    source = runner.source
    assert isinstance(source, KafkaSinkSource)

    def read_some() -> list[int]:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            rows = source.read(source.position())  # nothing confirmed: always from there
            if rows:
                return [int(r[0]) for r in rows]
        raise AssertionError("nothing to read")

    try:
        first = read_some()
        again = read_some()  # the round failed (nothing advanced): read from the start again
        assert again == first
        source.advance(first[-1])
        source.advance(first[-1])  # nothing pending any more: the position stays
        assert source.position() == first[-1]

        stop = threading.Event()
        rounds: list[str] = []

        def catch_up() -> int:  # a broker error, then a round that ends the run
            rounds.append("round")
            if len(rounds) == 1:
                raise KafkaException(KafkaError(KafkaError._TRANSPORT))
            stop.set()
            return 0

        source.follow(stop, catch_up)  # the error is retried, not raised
        assert rounds == ["round", "round"]
    finally:
        runner.close()
