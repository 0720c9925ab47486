"""The relay publishes every event of the store to governance-events and its audit record to
audit-trail, Avro-framed, keyed by tenant, with the event headers."""

from __future__ import annotations

from collections.abc import Callable
from uuid import UUID, uuid5

import pytest

from api.bootstrap import System
from domain.events import event_id, event_type
from domain.tenancy import SYSTEM_TENANT_ID
from infra.kafka.codec import EventCodec
from infra.kafka.config import KafkaConfig
from infra.kafka.relay import KafkaRelay
from infra.kafka.schemas import domain_event_classes
from tests.integration.kafka.support import (
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
        if event.meta["trace_parent"] is not None:  # caused by a request, not by the system
            assert headers["traceparent"] == TRACE.encode()


# What the audit trail carries for `every_event_type`, written by hand: one record per stored
# event, in log order: (event_type, event_category, action, result, whose tenant, actor).
WORKER = "migration-worker:stream"  # the runner `every_event_type` runs its jobs with
EXPECTED_AUDIT_TRAIL = [
    ("tenant.created", "admin", "create_tenant", "success", "tenant", "operator"),
    ("tenant.profile_updated", "admin", "update_tenant", "success", "tenant", "operator"),
    ("tenant.quotas_changed", "admin", "change_tenant_quotas", "success", "tenant", "operator"),
    (
        "tenant.sign_in_settings_changed",
        "admin",
        "change_tenant_sign_in_settings",
        "success",
        "tenant",
        "operator",
    ),
    ("tenant.suspended", "admin", "suspend_tenant", "success", "tenant", "operator"),
    ("tenant.reactivated", "admin", "reactivate_tenant", "success", "tenant", "operator"),
    ("integration.created", "integration", "create_integration", "success", "tenant", "operator"),
    ("integration.updated", "integration", "update_integration", "success", "tenant", "operator"),
    (
        "integration.health_changed",
        "integration",
        "integration_health_changed",
        "success",
        "tenant",
        "operator",
    ),
    ("role_mapping.created", "governance", "role_mapping.created", "success", "tenant", "operator"),
    ("role_mapping.updated", "governance", "role_mapping.updated", "success", "tenant", "operator"),
    ("role_mapping.deleted", "governance", "role_mapping.deleted", "success", "tenant", "operator"),
    ("integration.archived", "integration", "delete_integration", "success", "tenant", "operator"),
    (
        "integration.secrets_shredded",
        "integration",
        "shred_integration_secrets",
        "success",
        "tenant",
        "system",
    ),
    (
        "tenant_policy.registered",
        "governance",
        "tenant_policy.registered",
        "success",
        "tenant",
        "operator",
    ),
    (
        "tenant_policy.version_added",
        "governance",
        "tenant_policy.version_added",
        "success",
        "tenant",
        "operator",
    ),
    (
        "tenant_policy.version_added",
        "governance",
        "tenant_policy.version_added",
        "success",
        "tenant",
        "operator",
    ),
    (
        "tenant_policy.activated",
        "governance",
        "tenant_policy.activated",
        "success",
        "tenant",
        "operator",
    ),
    (
        "tenant_policy.rolled_back",
        "governance",
        "tenant_policy.rolled_back",
        "success",
        "tenant",
        "operator",
    ),
    (
        "tenant_policy.retired",
        "governance",
        "tenant_policy.retired",
        "success",
        "tenant",
        "operator",
    ),
    (
        "decision_log_settings.created",
        "governance",
        "decision_log_settings.created",
        "success",
        "tenant",
        "operator",
    ),
    (
        "decision_log_settings.changed",
        "governance",
        "decision_log_settings.changed",
        "success",
        "tenant",
        "operator",
    ),
    (
        "shadow_rollout.configured",
        "governance",
        "shadow_rollout.configured",
        "success",
        "tenant",
        "operator",
    ),
    (
        "shadow_rollout.reconfigured",
        "governance",
        "shadow_rollout.reconfigured",
        "success",
        "tenant",
        "operator",
    ),
    (
        "shadow_rollout.step_changed",
        "governance",
        "shadow_rollout.step_changed",
        "success",
        "tenant",
        "operator",
    ),
    (
        "shadow_rollout.step_changed",
        "governance",
        "shadow_rollout.step_changed",
        "success",
        "tenant",
        "operator",
    ),
    (
        "shadow_rollout.step_requested",
        "governance",
        "shadow_rollout.step_requested",
        "success",
        "tenant",
        "operator",
    ),
    (
        "shadow_rollout.rolled_back",
        "governance",
        "shadow_rollout.rolled_back",
        "success",
        "tenant",
        "operator",
    ),
    *[
        (
            f"migration_job.{change}",
            "migration",
            f"migration_job.{change}",
            "failure" if change == "failed" else "success",
            "tenant",
            who,
        )
        for change, who in (
            ("created", "operator"),  # a job that completes with its one unconvertible file
            ("claimed", WORKER),
            ("progressed", WORKER),
            ("completed", WORKER),
            ("created", "operator"),  # a job cancelled while a worker holds it
            ("claimed", WORKER),
            ("lease_renewed", WORKER),
            ("cancelled", "operator"),
            ("created", "operator"),  # a job that fails: its upload is gone
            ("claimed", WORKER),
            ("failed", WORKER),
        )
    ],
    ("webhook.registered", "integration", "create_webhook", "success", "tenant", "operator"),
    ("webhook.updated", "integration", "update_webhook", "success", "tenant", "operator"),
    ("webhook.disabled", "integration", "disable_webhook", "success", "tenant", "system"),
    ("webhook.updated", "integration", "update_webhook", "success", "tenant", "operator"),
    ("webhook.deleted", "integration", "delete_webhook", "success", "tenant", "operator"),
    ("tenant.deactivated", "admin", "deactivate_tenant", "success", "tenant", "operator"),
    ("tenant.purged", "admin", "purge_tenant", "success", "system", "operator"),
    ("governance.create_tenant", "governance", "create_tenant", "denied", "system", "operator"),
]
EVENT_ID_NAMESPACE = UUID("1fe42101-2c45-5c36-9a69-f13aac497af5")  # uuid5(URL, urn:acgs:event)


def test_every_audit_record_goes_to_the_audit_trail(
    system: System,
    kafka_config: KafkaConfig,
    codec: EventCodec,
    make_relay: Callable[..., KafkaRelay],
    every_event_type: Callable[[], UUID],
) -> None:
    relay = make_relay()
    start = relay.position()
    tenant_id = every_event_type()
    stored = stored_events_after(system, start)
    relay.catch_up()

    messages = read_topic(kafka_config, kafka_config.topics.audit_trail, at_least=len(stored))
    assert len(messages) == len(stored) == len(EXPECTED_AUDIT_TRAIL)
    received = {codec.decode(m.value(), m.topic())["audit_id"]: m for m in messages}
    whose = {str(tenant_id): "tenant", str(SYSTEM_TENANT_ID): "system"}
    for event, expected in zip(stored, EXPECTED_AUDIT_TRAIL, strict=True):
        audit_id = str(
            uuid5(EVENT_ID_NAMESPACE, f"{event.originator_id}:{event.originator_version}")
        )
        msg = received[audit_id]
        record = codec.decode(msg.value(), msg.topic())
        assert (
            record["event_type"],
            record["event_category"],
            record["action"],
            record["result"],
            whose.get(record["tenant_id"], record["tenant_id"]),
            record["actor_id"],
        ) == expected
        assert record["constitutional_hash"] == HASH
        assert record["timestamp"] == event.timestamp
        assert msg.key() == record["tenant_id"].encode()
        assert headers_of(msg)["event_id"] == audit_id.encode()


def test_position_moves_only_past_what_was_published(
    system: System, make_relay: Callable[..., KafkaRelay], every_event_type: Callable[[], UUID]
) -> None:
    relay = make_relay()
    every_event_type()

    relay.catch_up()

    assert relay.position() == log_head(system)
    assert relay.step() == 0
    assert relay.stats.dead_letters == 0
    assert relay.stats.events == 47  # every_event_type records exactly forty-seven events
    assert relay.stats.messages == 94  # each to governance-events and to audit-trail
    assert relay.stats.retries == 0
