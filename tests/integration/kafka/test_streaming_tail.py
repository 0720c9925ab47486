"""`acgs streaming tail` as a user runs it, against the real broker and registry: instants in ISO
8601 with `Z`, the local broker's address found through the data directory, the local broker's
ports kept from one start to the next, and a broker that goes away said once, not per retry."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path
from uuid import uuid4

import pytest
from confluent_kafka import Consumer, Producer
from confluent_kafka.schema_registry import SchemaRegistryClient

from domain.events import Actor, EventMeta
from domain.tenant.aggregate import Tenant
from infra.kafka.codec import EventCodec
from infra.kafka.config import KafkaConfig
from infra.kafka.local_broker import LocalAddresses, LocalStreaming, TansuBroker
from infra.kafka.topics import ensure_topics
from tests.integration.kafka.support import HASH

pytestmark = [pytest.mark.kafka]

ACGS = [sys.executable, "-c", "from api.cli.main import cli; cli()"]
ISO_UTC = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,6})?Z$")


def _env(data_dir: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ACGS_")}
    return {**env, "ACGS_DATA_DIR": str(data_dir), **extra}


def _tail(env: dict[str, str], *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*ACGS, "streaming", "tail", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def _publish_one_event(config: KafkaConfig, topic: str) -> str:
    ensure_topics(config, [topic], partitions=1)
    tenant = Tenant.register(
        tenant_id=uuid4(),
        name="Tail Inc",
        slug="tail-inc",
        email="a@tail.test",
        meta=EventMeta(uuid4(), Actor("alice"), HASH),
    )
    codec = EventCodec(SchemaRegistryClient(config.registry_conf()))
    try:
        key, value, headers = codec.event_message(tenant.collect_events()[0], topic)
    finally:
        codec.close()
    producer = Producer({**config.client_conf(), "acks": "all"})
    producer.produce(topic, value, key, headers=headers)
    assert producer.flush(10) == 0
    return key.decode()


def test_tail_prints_instants_in_iso_8601_utc_and_finds_the_local_broker_by_data_dir(
    kafka_config: KafkaConfig, tmp_path: Path
) -> None:
    topic = kafka_config.topics.governance_events
    key = _publish_one_event(kafka_config, topic)
    # what `acgs serve --kafka-local` leaves in its data directory
    LocalAddresses(kafka_config.bootstrap_servers, kafka_config.schema_registry_url).write(
        tmp_path / "kafka-local.json"
    )
    result = _tail(_env(tmp_path), "--topic", topic, "--limit", "1", "--timeout", "30")
    assert result.returncode == 0, result.stderr
    line = json.loads(result.stdout.splitlines()[0])
    assert line["key"] == key
    assert ISO_UTC.fullmatch(line["value"]["occurred_at"]), line["value"]["occurred_at"]


def test_the_local_broker_keeps_its_ports_per_data_directory(tmp_path: Path) -> None:
    address_file = tmp_path / "kafka-local.json"
    first = LocalStreaming(address_file=address_file)
    addresses = first.start()
    first.stop()
    assert LocalAddresses.read(address_file) == LocalAddresses(*addresses)
    second = LocalStreaming(address_file=address_file)
    try:
        assert second.start() == addresses
    finally:
        second.stop()


def test_a_broker_that_goes_away_is_reported_once(tmp_path: Path) -> None:
    broker = TansuBroker(log_path=tmp_path / "tansu.log")
    broker.start()
    env = _env(
        tmp_path,
        ACGS_KAFKA_BOOTSTRAP_SERVERS=broker.bootstrap_servers,
        ACGS_SCHEMA_REGISTRY_URL="http://127.0.0.1:9",
    )
    try:
        tail = subprocess.Popen(
            [*ACGS, "streaming", "tail", "--topic", "gone-away", "--timeout", "8"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        time.sleep(2.0)
    finally:
        broker.stop()
    out, err = tail.communicate(timeout=60)
    assert tail.returncode == 0, err
    lines = [line for line in err.splitlines() if line.strip()]
    reports = [line for line in lines if "cannot be reached" in line]
    assert len(reports) == 1, err
    assert broker.bootstrap_servers in reports[0]
    assert len(lines) == 1, err
    assert out == ""


def test_the_local_broker_stops_at_once_with_a_client_connected(tmp_path: Path) -> None:
    broker = TansuBroker(log_path=tmp_path / "tansu.log")
    broker.start()
    consumer = Consumer(
        {"bootstrap.servers": broker.bootstrap_servers, "group.id": "stays", "log_level": 0}
    )
    try:
        consumer.list_topics(timeout=10)
        started = time.monotonic()
        broker.stop()
        assert time.monotonic() - started < 2.5  # it was 5 s: the kill after a SIGTERM ignored
    finally:
        consumer.close()
