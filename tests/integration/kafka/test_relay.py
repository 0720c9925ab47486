"""The relay publishes every event of the store to governance-events and its audit record to
audit-trail, Avro-framed, keyed by tenant, with the headers of decisions 8."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from uuid import UUID

import pytest

from api.bootstrap import System
from domain.events import event_id, event_type
from infra.kafka.codec import EventCodec
from infra.kafka.config import KafkaConfig
from infra.kafka.relay import KafkaRelay
from infra.kafka.schemas import domain_event_classes
from projections.audit_log import audit_record
from tests.integration.kafka.conftest import (
    HASH,
    TRACE,
    headers_of,
    log_head,
    read_topic,
    stored_events_after,
)

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]


def test_every_event_type_round_trips_through_kafka(
    system: System,
    kafka_config: KafkaConfig,
    codec: EventCodec,
    make_relay: Callable[..., KafkaRelay],
    every_event_type: Callable[[], UUID],
) -> None:
    relay = make_relay()
    start = relay.position()
    every_event_type()
    stored = stored_events_after(system, start)

    assert relay.catch_up() == len(stored)

    messages = read_topic(kafka_config, kafka_config.topics.governance_events, at_least=len(stored))
    decoded = [codec.event_from_record(codec.decode(m.value(), m.topic())) for m in messages]
    assert sorted(decoded, key=repr) == sorted(stored, key=repr)
    assert {type(e) for e in decoded} == set(domain_event_classes())
    for msg, event in zip(messages, decoded, strict=True):
        assert msg.value()[0] == 0  # Confluent framing: magic byte, then the schema id
        assert msg.key() == event.meta["tenant_id"].encode()
        headers = headers_of(msg)
        assert headers["event_type"] == event_type(event).encode()
        assert (
            headers["event_id"]
            == str(event_id(event.originator_id, event.originator_version)).encode()
        )
        assert headers["constitutional_hash"] == HASH.encode()
        assert headers["traceparent"] == TRACE.encode()


def test_every_audit_record_goes_to_the_audit_trail(
    system: System,
    kafka_config: KafkaConfig,
    codec: EventCodec,
    make_relay: Callable[..., KafkaRelay],
    every_event_type: Callable[[], UUID],
) -> None:
    relay = make_relay()
    start = relay.position()
    every_event_type()
    stored = stored_events_after(system, start)
    relay.catch_up()

    messages = read_topic(kafka_config, kafka_config.topics.audit_trail, at_least=len(stored))
    received = {codec.decode(m.value(), m.topic())["audit_id"]: m for m in messages}
    assert len(messages) == len(stored)
    for event in stored:
        expected = audit_record(event)
        msg = received[str(expected["audit_id"])]
        record = codec.decode(msg.value(), msg.topic())
        assert record["event_type"] == expected["event_type"]
        assert record["event_category"] == expected["event_category"]
        assert record["tenant_id"] == str(expected["tenant_id"])
        assert record["timestamp"] == expected["timestamp"]
        assert msg.key() == str(expected["tenant_id"]).encode()
        assert headers_of(msg)["event_id"] == str(expected["audit_id"]).encode()


def test_position_moves_only_past_what_was_published(
    system: System, make_relay: Callable[..., KafkaRelay], every_event_type: Callable[[], UUID]
) -> None:
    relay = make_relay()
    every_event_type()

    relay.catch_up()

    assert relay.position() == log_head(system)
    assert relay.step() == 0
    assert relay.stats.dead_letters == 0
    assert Counter(relay.stats.__dict__)["events"] >= 8
