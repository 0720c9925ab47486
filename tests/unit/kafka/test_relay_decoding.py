"""The relay reads each stored event's JSON straight into its parts: the Avro record and the
audit record made from them equal those made from the domain event the eventsourcing mapper
gives; a state it cannot read exactly is left to the mapper."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from confluent_kafka.schema_registry import SchemaRegistryClient
from eventsourcing.persistence import StoredEvent
from hypothesis import given
from hypothesis import strategies as st

from commands.application import GovernanceApplication
from domain.audit import AuditEntry
from domain.events import event_id, event_id_text
from infra.kafka.codec import EventCodec, EventParts, _json_text, _plain_json_text
from projections.audit_log import audit_record, audit_record_of
from tests.unit.kafka.test_schemas import META, sample_events

APP = GovernanceApplication(env={"PERSISTENCE_MODULE": "eventsourcing.popo"})
# never contacted: records are built, not serialized
CODEC = EventCodec(SchemaRegistryClient({"url": "http://127.0.0.1:9"}))


def stored(event: Any) -> StoredEvent:
    return APP.mapper.to_stored_event(event)


def from_stored(s: StoredEvent) -> EventParts | None:
    return CODEC.parts_of_stored(s.topic, s.originator_id, s.originator_version, s.state)


def audit_of(parts: EventParts) -> dict[str, Any]:
    return audit_record_of(
        audit_id=parts.event_id,
        event_type=parts.plan.event_type,
        aggregate_id=parts.aggregate_id,
        timestamp=parts.timestamp,
        meta=parts.meta,
        fields=parts.fields,
    )


# Golden values, computed once outside the code under test: the namespace is
# uuid5(NAMESPACE_URL, "urn:acgs:event") = 1fe42101-2c45-5c36-9a69-f13aac497af5, and each id is
# uuid5(namespace, f"{aggregate_id}:{version}"). Consumers deduplicate on these ids across
# releases, so they must never change.
GOLDEN_EVENT_IDS = [
    ("00000000-0000-0000-0000-000000000001", 1, "1bec1754-5e6e-5bc7-bf81-b00e809c3165"),
    ("6f1c1b38-1c43-4f5e-8f1e-5a8f0c0b7d11", 2, "0a55ca5f-986d-501d-9df5-3ee379188102"),
    ("6f1c1b38-1c43-4f5e-8f1e-5a8f0c0b7d11", 99, "865b2b2a-b700-513f-aca0-04b6d3490802"),
    ("ffffffff-ffff-ffff-ffff-ffffffffffff", 10**12, "8b8f8abc-981c-5783-9e71-749332436436"),
]


@pytest.mark.parametrize(("aggregate", "version", "expected"), GOLDEN_EVENT_IDS)
def test_event_ids_are_uuid5_of_aggregate_and_version(
    aggregate: str, version: int, expected: str
) -> None:
    assert event_id(uuid.UUID(aggregate), version) == uuid.UUID(expected)
    assert event_id(aggregate, version) == uuid.UUID(expected)
    assert event_id_text(uuid.UUID(aggregate), version) == expected


@pytest.mark.parametrize("event", sample_events(), ids=lambda e: type(e).__qualname__)
def test_the_stored_json_gives_the_records_of_the_mappers_event(event: Any) -> None:
    s = stored(event)
    decoded = APP.mapper.to_domain_event(s)

    parts = from_stored(s)

    assert parts is not None
    assert CODEC.record_of(parts) == CODEC.event_record(decoded)
    expected = audit_record(decoded)
    audit = audit_of(parts)
    assert audit.pop("audit_id") == str(expected.pop("audit_id"))
    assert audit == expected


def odd_entry(details: dict[str, Any]) -> StoredEvent:
    entry = AuditEntry.record(
        entry_id=uuid.uuid4(),
        category="integration",
        action="x",
        result="success",
        target_resource=None,
        details=details,
        meta=META,
    )
    return stored(entry.collect_events()[0])


@pytest.mark.parametrize(
    "details",
    [
        {"id": uuid.uuid4()},  # a second transcoded value
        {"_type_": "uuid_hex"},  # a key that looks like one
        {"nan": float("nan")},  # JSON msgspec refuses
    ],
)
def test_states_it_cannot_read_exactly_are_left_to_the_mapper(details: dict[str, Any]) -> None:
    assert from_stored(odd_entry(details)) is None


def test_a_string_that_looks_like_a_tag_is_read_as_the_string() -> None:
    s = odd_entry({"text": '"_type_"', "big": 10**30})
    parts = from_stored(s)
    assert parts is not None
    assert CODEC.record_of(parts) == CODEC.event_record(APP.mapper.to_domain_event(s))


def test_a_state_that_is_not_json_is_left_to_the_mapper() -> None:
    s = stored(sample_events()[0])
    assert (
        CODEC.parts_of_stored(s.topic, s.originator_id, s.originator_version, s.state[:-1]) is None
    )


JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**64)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(), children, max_size=4)
    ),
    max_leaves=20,
)


@given(st.dictionaries(st.text(), JSON_VALUES, max_size=6))
def test_the_fast_json_text_of_a_plain_value_is_the_json_modules_text(value: Any) -> None:
    assert _plain_json_text(value) == _json_text(value)


@pytest.mark.parametrize(
    "value",
    [
        {"a": 1e16, "b": 1e-7},
        {"name": "Zoë", "emoji": "\U0001f600"},
        {"n": None},
        {"x": 10**30},
        {"\x7f": "\x7f"},  # DEL: the json module escapes it, msgspec does not
    ],
)
def test_the_fast_json_text_falls_back_where_msgspec_writes_otherwise(value: Any) -> None:
    assert _plain_json_text(value) == _json_text(value)
