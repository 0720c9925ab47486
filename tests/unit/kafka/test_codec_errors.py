"""What the codec refuses and how: an event or audit record that does not fit its schema is an
EncodeError (dead-lettered by the relay), a registry that cannot be reached RegistryUnavailable
(retried, never dead-lettered), a registry that refuses the schema an EncodeError; stored states
it cannot read straight are left to the mapper. Against the strict registry double over HTTP."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from typing import Any

import pytest
from confluent_kafka.schema_registry import Schema, SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroSerializer
from confluent_kafka.serialization import MessageField, SerializationContext

from domain.tenant.aggregate import Tenant as StoredTenant
from infra.kafka.codec import EncodeError, EventCodec, RegistryUnavailable
from infra.kafka.schema_registry_server import SchemaRegistryHTTPServer
from projections.audit_log import audit_record
from tests.unit.kafka.test_relay_decoding import stored
from tests.unit.kafka.test_schemas import sample_events

TOPIC = "acgs.test.events"


class Tenant:
    """A later release's `Tenant.Created` with a field the schema of this release lacks."""

    @dataclasses.dataclass(frozen=True)
    class Created(StoredTenant.Created):
        region: str = "eu"


@pytest.fixture(scope="module")
def server() -> Iterator[SchemaRegistryHTTPServer]:
    """One registry for the module: only the test of a refused schema registers an event's."""
    server = SchemaRegistryHTTPServer()
    server.start_in_thread()
    yield server
    server.stop()


@pytest.fixture
def registry(server: SchemaRegistryHTTPServer) -> SchemaRegistryClient:
    return SchemaRegistryClient({"url": server.url})


@pytest.fixture
def codec(registry: SchemaRegistryClient) -> Iterator[EventCodec]:
    codec = EventCodec(registry)
    yield codec
    codec.close()  # and its registry client


def created() -> Any:
    return sample_events()[0]


def an_audit() -> dict[str, Any]:
    return audit_record(created())


def test_an_audit_record_encodes_and_decodes_through_the_registry(codec: EventCodec) -> None:
    audit = an_audit()
    value = codec.encode_audit(audit, TOPIC)
    assert value[0] == 0  # the Confluent frame's magic byte
    decoded = codec.decode(value, TOPIC)
    assert decoded["audit_id"] == str(audit["audit_id"])
    assert codec.encode_audit(audit, TOPIC) == value  # the fast path writes the same bytes


def test_records_that_do_not_fit_their_schema_are_encode_errors(codec: EventCodec) -> None:
    with pytest.raises(EncodeError, match=r"has no field for \['region'\]"):
        codec.event_message(Tenant.Created(**vars(created()), region="us"), TOPIC)
    with pytest.raises(EncodeError, match=r"^object: "):
        codec.event_message(object(), TOPIC)
    with pytest.raises(EncodeError, match=r"^audit record: "):
        codec.encode_audit({**an_audit(), "timestamp": "yesterday"}, TOPIC)
    with pytest.raises(ValueError, match=r"unknown event type 'tenant\.vanished'"):
        codec.event_from_record({"event_type": "tenant.vanished"})


def test_a_schema_the_registry_refuses_is_an_encode_error(
    codec: EventCodec, registry: SchemaRegistryClient
) -> None:
    subject = codec.plan(type(created())).schema.full_name
    older = {"type": "record", "name": subject, "fields": [{"name": "z", "type": "int"}]}
    registry.register_schema(subject, Schema(json.dumps(older), "AVRO"))
    with pytest.raises(EncodeError, match="incompatible"):
        codec.event_message(created(), TOPIC)


def test_a_registry_that_cannot_be_reached_is_retried_not_dead_lettered() -> None:
    codec = EventCodec(SchemaRegistryClient({"url": "http://127.0.0.1:9", "max.retries": 0}))
    with pytest.raises(RegistryUnavailable):
        codec.event_message(created(), TOPIC)
    with pytest.raises(RegistryUnavailable):
        codec.audit_message(an_audit(), TOPIC)


def test_a_value_that_is_not_a_record_is_refused(
    codec: EventCodec, registry: SchemaRegistryClient
) -> None:
    serializer = AvroSerializer(registry, '"string"')
    value = serializer("text", SerializationContext(TOPIC, MessageField.VALUE))
    assert value is not None
    with pytest.raises(TypeError, match="the value is not an Avro record"):
        codec.decode(value, TOPIC)


def stored_state(event: Any, **change: Any) -> tuple[str, Any, int, bytes]:
    s = stored(event)
    state = json.loads(s.state)
    state.update(change)
    return s.topic, s.originator_id, s.originator_version, json.dumps(state).encode()


def test_stored_states_it_cannot_read_straight_are_left_to_the_mapper(codec: EventCodec) -> None:
    topic, aggregate, version, state = stored_state(created())
    assert codec.parts_of_stored(topic, aggregate, version, state) is not None
    assert codec.parts_of_stored("json:dumps", aggregate, version, state) is None
    upcast = stored_state(created(), class_version=2)
    assert codec.parts_of_stored(*upcast) is None
    odd_stamp = stored_state(created(), timestamp={"_type_": "datetime_iso", "_data_": 5})
    assert codec.parts_of_stored(*odd_stamp) is None
