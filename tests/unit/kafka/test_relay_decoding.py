"""The relay's fast decoding of stored events gives exactly the domain event the eventsourcing
mapper gives, and leaves everything it cannot read exactly to the mapper."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from eventsourcing.persistence import StoredEvent

from commands.application import GovernanceApplication
from domain.audit import AuditEntry
from domain.events import _EVENT_ID_NAMESPACE, event_id
from infra.kafka.relay import FastEventDecoder
from tests.unit.kafka.test_schemas import META, sample_events

APP = GovernanceApplication(env={"PERSISTENCE_MODULE": "eventsourcing.popo"})


def stored(event: Any) -> StoredEvent:
    return APP.mapper.to_stored_event(event)


def test_event_ids_are_uuid5_of_aggregate_and_version() -> None:
    for version in (1, 2, 99, 10**12):
        aggregate = uuid.uuid4()
        expected = uuid.uuid5(_EVENT_ID_NAMESPACE, f"{aggregate}:{version}")
        assert event_id(aggregate, version) == expected
        assert event_id(str(aggregate), version) == expected


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
