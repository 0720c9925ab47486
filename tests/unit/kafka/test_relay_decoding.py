"""The relay's fast decoding of stored events gives exactly the domain event the eventsourcing
mapper gives, and leaves everything it cannot read exactly to the mapper."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from eventsourcing.persistence import StoredEvent

from commands.application import GovernanceApplication
from domain.audit import AuditEntry
from domain.events import event_id
from infra.kafka.relay import FastEventDecoder
from tests.unit.kafka.test_schemas import META, sample_events

APP = GovernanceApplication(env={"PERSISTENCE_MODULE": "eventsourcing.popo"})


def stored(event: Any) -> StoredEvent:
    return APP.mapper.to_stored_event(event)


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


@pytest.mark.parametrize("event", sample_events(), ids=lambda e: type(e).__qualname__)
def test_the_fast_path_gives_the_mappers_event(event: Any) -> None:
    decoder = FastEventDecoder(APP.mapper)
    s = stored(event)

    fast = decoder._fast(s.originator_id, s.originator_version, s.topic, s.state)
    slow = APP.mapper.to_domain_event(s)

    assert fast is not None
    assert type(fast) is type(slow)
    assert vars(fast) == vars(slow)
    assert list(vars(fast)) == list(vars(slow))
    assert fast == slow == event
    assert decoder(s.originator_id, s.originator_version, s.topic, s.state) == event


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
        {"text": '"_type_"'},
        {"nan": float("nan")},  # JSON msgspec refuses
        {"big": 10**400},
    ],
)
def test_states_it_cannot_read_exactly_go_to_the_mapper(details: dict[str, Any]) -> None:
    decoder = FastEventDecoder(APP.mapper)
    s = odd_entry(details)
    slow = APP.mapper.to_domain_event(s)

    decoded = decoder(s.originator_id, s.originator_version, s.topic, s.state)

    assert vars(decoded).keys() == vars(slow).keys()
    assert repr(decoded) == repr(slow)


def test_a_state_the_mapper_cannot_read_fails_as_in_the_mapper() -> None:
    decoder = FastEventDecoder(APP.mapper)
    s = stored(sample_events()[0])
    with pytest.raises(Exception, match="Failed to deserialise"):
        decoder(s.originator_id, s.originator_version, s.topic, s.state[:-1])
