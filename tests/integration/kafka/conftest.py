"""Helpers for the streaming tests: a relay of the test's own, reading topics back, and making
one event of every type through the real commands."""

from __future__ import annotations

import io
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from uuid import UUID

import pytest
from confluent_kafka.schema_registry import SchemaRegistryClient

from api.bootstrap import System, build_relay
from commands.context import CommandContext
from commands.integrations import CreateIntegration
from commands.migration_runner import MigrationRunner, RunnerSettings
from commands.migration_sources import Upload
from commands.migrations import StartJob
from commands.policy_intake import SubmitPolicy
from commands.role_mappings import CreateRoleMapping
from commands.tenants import CreateTenant
from commands.webhooks import RegisterWebhook
from domain.errors import ConstitutionalHashMismatch, IntegrationUnreachable
from domain.integration.aggregate import ARCHIVE_RETENTION_DAYS
from domain.migration.job import JobStatus
from domain.shadow.comparison import Agreement
from domain.shadow.metrics import Tally
from domain.webhooks.targets import AllowList
from infra.kafka.codec import EventCodec
from infra.kafka.config import KafkaConfig
from infra.kafka.relay import KafkaRelay
from infra.postgres.job_queue import PostgresJobQueue
from projections.sinks.runner import SinkSettings
from tests.e2e.migration_support import BROKEN
from tests.e2e.policy_support import rego
from tests.integration.kafka.support import (
    HASH,
    PLATFORM,
    TRACE,
    log_head,
)
from tests.peers.http import free_port


@pytest.fixture
def codec(kafka_config: KafkaConfig) -> Iterator[EventCodec]:
    codec = EventCodec(SchemaRegistryClient(kafka_config.registry_conf()))
    yield codec
    codec.close()


@pytest.fixture
def make_relay(
    system: System, kafka_config: KafkaConfig, unique: str
) -> Iterator[Callable[..., KafkaRelay]]:
    """Relays named after the test, starting at the current head of the log (so they publish only
    what the test records); all closed at the end."""
    made: list[KafkaRelay] = []

    def make(config: KafkaConfig | None = None, *, prepare: bool = True) -> KafkaRelay:
        relay: KafkaRelay = build_relay(system, config or kafka_config, name=f"relay_{unique}")
        if prepare:
            relay.prepare()
        if not made:
            relay.seek(log_head(system))
        made.append(relay)
        return relay

    yield make
    for relay in made:
        relay.close()


@pytest.fixture
def every_event_type(system: System, unique: str) -> Callable[[], UUID]:
    """Record one event of every domain type through the real commands; returns the tenant id."""

    def record() -> UUID:
        tenant = system.tenants.create(
            PLATFORM,
            CreateTenant(f"Stream {unique}", f"s-{unique}", "admin@example.com"),
        )
        system.tenants.update(PLATFORM, tenant.id, {"tenant_name": f"Stream {unique} 2"})
        system.tenants.update(PLATFORM, tenant.id, {"max_storage_gb": 42})
        system.tenants.update(PLATFORM, tenant.id, {"default_role": "none"})
        system.tenants.update(PLATFORM, tenant.id, {"status": "suspended"})
        system.tenants.reactivate(PLATFORM, tenant.id)
        _every_integration_event(system, tenant.id)
        registry = system.policies
        assert registry is not None
        for role in ("admin", "owner"):
            registry.submit(PLATFORM, tenant.id, SubmitPolicy(rego("door", role)))
        registry.activate(PLATFORM, tenant.id, "door", 2)
        registry.activate(PLATFORM, tenant.id, "door", 1)  # a rollback
        registry.retire(PLATFORM, tenant.id, "door")
        registry.configure_decision_log(PLATFORM, tenant.id, log_input=False, fields=[])
        registry.configure_decision_log(PLATFORM, tenant.id, log_input=True, fields=["user.ssn"])
        _every_shadow_rollout_event(system, tenant.id)
        _every_migration_job_event(system, tenant.id)
        _every_webhook_event(system, tenant.id)
        system.tenants.deactivate(PLATFORM, tenant.id)
        system.tenants.deactivate(PLATFORM, tenant.id, immediate=True)
        refused = CommandContext(PLATFORM.principal, "0000000000000000", TRACE)
        with pytest.raises(ConstitutionalHashMismatch):
            system.tenants.create(refused, CreateTenant("x", f"x-{unique}", "x@example.com"))
        return tenant.id

    return record


def _every_integration_event(system: System, tenant_id: UUID) -> None:
    """Created, Updated, HealthChanged (a broker that is not there), Archived, SecretsShredded."""
    commands = system.integrations
    assert commands is not None
    config = {"bootstrap_servers": [f"127.0.0.1:{free_port()}"], "timeout_seconds": 1}
    made = commands.create(PLATFORM, tenant_id, CreateIntegration("kafka", "Stream", config))
    commands.update(PLATFORM, tenant_id, made.id, {"config": {"topic_prefix": "acgs."}})
    with pytest.raises(IntegrationUnreachable):
        commands.test(PLATFORM, tenant_id, made.id)
    _every_role_mapping_event(system, tenant_id, made.id)
    commands.archive(PLATFORM, tenant_id, made.id)
    later = datetime.now(UTC) + timedelta(days=ARCHIVE_RETENTION_DAYS + 1)
    assert commands.shred_expired(tenant_id, made.id, later)


def _every_shadow_rollout_event(system: System, tenant_id: UUID) -> None:
    """Configured, Reconfigured, StepChanged (25, 50), StepRequested (100), RolledBack: each
    step judged on 1,000 agreeing decisions counted in the metrics store."""
    shadow, metrics = system.shadow, system.shadow_metrics
    assert shadow is not None
    assert metrics is not None
    shadow.configure(PLATFORM, tenant_id, "door", None)
    shadow.configure(PLATFORM, tenant_id, "door", {"threshold": 0.1})
    agreeing = Tally()
    for _ in range(1000):
        agreeing.add(Agreement.AGREE, 1.0, 0.1)
    for target in (25, 50, 100):
        state = shadow.state(tenant_id, fresh=True)
        assert state is not None
        metrics.add(tenant_id, state.epoch, {datetime.now(UTC).replace(second=0): agreeing})
        shadow.request_step(PLATFORM, tenant_id, target)
    shadow.roll_back(PLATFORM, tenant_id, "by hand")


JOB_WORKER = "stream"  # the migration runner's name: its events' actor is `migration-worker:stream`


def _every_migration_job_event(system: System, tenant_id: UUID) -> None:
    """Three policy-conversion jobs of one unconvertible file, run by a real runner:
    Created, Claimed, Progressed (the failed item), Completed; Created, Claimed, LeaseRenewed,
    Cancelled (by the operator, while held); Created, Claimed, Failed (its upload gone)."""
    jobs = system.migrations
    assert jobs is not None
    runner = MigrationRunner(
        system.app,
        jobs.kinds,
        PostgresJobQueue(system.projector_conninfo),
        system.settings.data_dir / "migrations" / "work",
        RunnerSettings(lease_seconds=600, constitutional_hash=HASH),  # no heartbeat fires
        owner=JOB_WORKER,
        sealer=system.sealer,
    )

    def start() -> UUID:
        name = "broken-syntax.json"
        upload = Upload(name, io.BytesIO(BROKEN[name].encode()), "application/json")
        job = jobs.start(PLATFORM, tenant_id, StartJob("policy_conversion", "Legacy", {}, upload))
        return UUID(str(job.id))

    completed = start()
    assert runner.run_job(tenant_id, completed, threading.Event())
    done = jobs.job(tenant_id, completed)
    assert (done.status, done.processed, done.failed) == (JobStatus.COMPLETED, 1, 1)

    cancelled = start()
    held = runner.claim(tenant_id, cancelled)
    assert held is not None
    runner.renew(held)  # what the lease's heartbeat does
    system.app.save_for(tenant_id, held)
    assert jobs.cancel(PLATFORM, tenant_id, cancelled).status is JobStatus.CANCELLED

    failed = start()
    jobs.sources.discard(failed)  # its upload gone before a worker opens it
    assert runner.run_job(tenant_id, failed, threading.Event())
    assert jobs.job(tenant_id, failed).status is JobStatus.FAILED


def _every_webhook_event(system: System, tenant_id: UUID) -> None:
    """Registered, Updated, Disabled (by its deliveries: a POST to a closed port on 127.0.0.1,
    loopback allow-listed meanwhile as an operator would), Updated (re-enabled), Deleted."""
    commands, guard = system.webhooks, system.webhook_guard
    assert commands is not None
    assert guard is not None
    allowed = guard.allow
    guard.allow = AllowList.parse(["127.0.0.1"])
    try:
        hook, _ = commands.create(
            PLATFORM,
            tenant_id,
            RegisterWebhook(f"http://127.0.0.1:{free_port()}/a", ["integration.health_changed"]),
        )
        changes = {"webhook_url": f"http://127.0.0.1:{free_port()}/b", "events": ["policy.updated"]}
        commands.update(PLATFORM, tenant_id, hook.id, changes)
        once = SinkSettings(max_count=100, max_wait=0.0, max_attempts=1, retry_initial=0.001)
        runner = system.webhook_runner(tenant_id, hook.id, settings=once, disable_after=1)
        try:
            runner.catch_up()  # the tenant's policy events: the first POST fails, and disables
        finally:
            runner.close()
        assert commands.load(tenant_id, hook.id).enabled is False
        commands.update(PLATFORM, tenant_id, hook.id, {"enabled": True})
        commands.delete(PLATFORM, tenant_id, hook.id)
    finally:
        guard.allow = allowed


def _every_role_mapping_event(system: System, tenant_id: UUID, integration_id: UUID) -> None:
    """Created, Updated, Deleted."""
    mappings = system.role_mappings
    assert mappings is not None
    mapping = mappings.create(
        PLATFORM,
        tenant_id,
        CreateRoleMapping(integration_id, "ldap_group", "cn=Stream,dc=acme,dc=test", "AUDITOR", 10),
    )
    mappings.update(PLATFORM, tenant_id, mapping.id, {"priority": 20})
    mappings.delete(PLATFORM, tenant_id, mapping.id)


@pytest.fixture
def create_tenants(system: System, unique: str) -> Callable[[int], list[UUID]]:
    counter = iter(range(10_000))

    def create(count: int) -> list[UUID]:
        ids = []
        for _ in range(count):
            n = next(counter)
            tenant = system.tenants.create(
                PLATFORM, CreateTenant(f"T {unique} {n}", f"t-{unique}-{n}", "a@example.com")
            )
            ids.append(tenant.id)
        return ids

    return create
