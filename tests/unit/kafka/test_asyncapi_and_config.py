"""The AsyncAPI document in docs/ is current, and the Kafka settings give the producer and
consumer guarantees the streaming design asks for."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from api.bootstrap import kafka_config
from api.cli.streaming import ASYNCAPI_PATH
from api.settings import Settings, SettingsError
from api.streaming.asyncapi import render
from infra.kafka.config import KafkaConfig, Topics


def test_the_asyncapi_document_in_docs_is_current() -> None:
    assert ASYNCAPI_PATH.read_text() == render(), "regenerate: acgs streaming asyncapi"


def test_the_asyncapi_document_lists_every_topic() -> None:
    channels = json.loads(render())["channels"]
    addresses = {c["address"] for c in channels.values()}
    assert addresses == {
        "governance-events",
        "audit-trail",
        "external-events",
        "governance-events.dlq",
        "audit-trail.dlq",
        "external-events.dlq",
    }


def test_the_producer_is_idempotent_with_acks_all_and_waits_out_outages() -> None:
    conf = KafkaConfig("b:9092", "http://r").producer_conf()
    assert conf["enable.idempotence"] is True
    assert conf["acks"] == "all"
    assert conf["message.timeout.ms"] == 0


def test_consumers_commit_by_hand_from_the_earliest_offset() -> None:
    conf = KafkaConfig("b:9092", "http://r", session_timeout_ms=2500).consumer_conf("g")
    assert conf["enable.auto.commit"] is False
    assert conf["auto.offset.reset"] == "earliest"
    assert conf["heartbeat.interval.ms"] == 250


def test_streaming_settings_come_from_the_environment() -> None:
    settings = Settings.from_env(
        {
            "ACGS_KAFKA_BOOTSTRAP_SERVERS": "k1:9092,k2:9092",
            "ACGS_SCHEMA_REGISTRY_URL": "https://registry",
            "ACGS_KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
            "ACGS_KAFKA_SASL_MECHANISM": "SCRAM-SHA-512",
            "ACGS_KAFKA_SASL_USERNAME": "acgs",
            "ACGS_KAFKA_SASL_PASSWORD": "s3cret",
            "ACGS_SCHEMA_REGISTRY_BASIC_AUTH": "acgs:s3cret",
            "ACGS_KAFKA_RELAY_BATCH_SIZE": "3000",
        }
    )
    config = kafka_config(settings)
    assert config.client_conf() == {
        "bootstrap.servers": "k1:9092,k2:9092",
        "security.protocol": "SASL_SSL",
        "sasl.mechanism": "SCRAM-SHA-512",
        "sasl.username": "acgs",
        "sasl.password": "s3cret",
    }
    assert config.registry_conf()["basic.auth.user.info"] == "acgs:s3cret"
    assert config.relay_batch_size == 3000
    assert "s3cret" not in repr(settings)
    assert "s3cret" not in repr(config)


def test_a_registry_url_is_required_when_streaming_is_on() -> None:
    settings = Settings.from_env({"ACGS_KAFKA_BOOTSTRAP_SERVERS": "k:9092"})
    with pytest.raises(SettingsError, match="ACGS_SCHEMA_REGISTRY_URL"):
        kafka_config(settings)


def test_dead_letter_topics_follow_their_topic() -> None:
    topics = Topics.with_prefix("x-")
    assert topics.dlq(topics.audit_trail) == "x-audit-trail.dlq"
    assert Path(ASYNCAPI_PATH).name == "asyncapi.json"


def test_streaming_needs_a_bootstrap_server() -> None:
    with pytest.raises(SettingsError, match="ACGS_KAFKA_BOOTSTRAP_SERVERS is not set"):
        kafka_config(Settings.from_env({}))
