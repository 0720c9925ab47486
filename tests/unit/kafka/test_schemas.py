"""schemas/avro/: a schema for every domain event type, each round-trips its event, each starts
with the event envelope, and each change stays compatible with its released versions."""

from __future__ import annotations

import json
import shutil
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import uuid4

import pytest
from confluent_kafka.schema_registry import SchemaRegistryClient

from domain.audit import AuditEntry
from domain.constitution import DEFAULT_CONSTITUTIONAL_HASH
from domain.events import Actor, EventMeta, event_id
from domain.integration.aggregate import Integration
from domain.integration.values import HealthStatus
from domain.maci import MaciRole
from domain.migration.job import MigrationJob
from domain.registry.decision_log import DecisionLogSettings
from domain.registry.policy import TenantPolicy
from domain.role_mapping import RoleMapping
from domain.shadow.metrics import RollbackRule
from domain.shadow.rollout import ShadowRollout, StepEvidence
from domain.tenant.aggregate import Tenant
from domain.webhooks.aggregate import Webhook
from domain.webhooks.targets import parse_target
from infra.kafka.codec import EncodeError, EventCodec
from infra.kafka.schemas import (
    ENVELOPE,
    EXTERNAL_EVENT,
    SchemaCatalog,
    SchemaNotFound,
    domain_event_classes,
    incompatibilities,
    record_name,
)

CATALOG = SchemaCatalog()
META = EventMeta(
    uuid4(),
    Actor("alice", (MaciRole.EXECUTIVE, MaciRole.AUDITOR), "oidc"),
    DEFAULT_CONSTITUTIONAL_HASH,
    "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
)


def sample_events() -> list[Any]:
    """One event of every type the domain emits."""
    tenant = Tenant.register(
        tenant_id=uuid4(), name="Acme Corp", slug="acme-corp", email="ops@acme.test", meta=META
    )
    tenant.update_profile({"tenant_name": "Acme Corporation", "billing_plan": "enterprise"}, META)
    tenant.change_quotas({"max_storage_gb": 500}, META)
    tenant.change_sign_in_settings({"default_role": "none", "access_token_ttl_seconds": 300}, META)
    tenant.suspend(META)
    tenant.reactivate(META)
    tenant.deactivate(META)
    tenant.purge(META)
    entry = AuditEntry.record(
        entry_id=uuid4(),
        category="authorization",
        action="create_tenant",
        result="denied",
        target_resource=None,
        details={"code": "FORBIDDEN", "nested": {"list": [1, 2.5, None, True]}},
        meta=META,
    )
    return [
        *tenant.collect_events(),
        *entry.collect_events(),
        *_integration_events(),
        *_registry_events(),
        *_role_mapping_events(),
        *_shadow_rollout_events(),
        *_migration_job_events(),
        *_webhook_events(),
    ]


def _shadow_rollout_events() -> list[Any]:
    evidence = StepEvidence(1000, 0.97)
    rollout = ShadowRollout.configure_new(
        tenant_id=META.tenant_id, policy_key="documents", rule=RollbackRule(), meta=META
    )
    rollout.reconfigure(policy_key="documents", rule=RollbackRule(threshold=0.1), meta=META)
    rollout.request_step(25, evidence, META)
    rollout.request_step(50, evidence, META)
    rollout.request_step(100, evidence, META)
    rollout.roll_back(automatic=True, reason="errors", evidence={"rate": 0.2}, meta=META)
    return list(rollout.collect_events())


def _role_mapping_events() -> list[Any]:
    mapping = RoleMapping.define(
        mapping_id=uuid4(),
        integration_id=uuid4(),
        source_type="ldap_group",
        source_value="CN=Admins,DC=acme,DC=test",
        maci_role="EXECUTIVE",
        priority=10,
        meta=META,
    )
    mapping.change({"maci_role": "AUDITOR", "priority": 20}, META)
    mapping.delete(META)
    return list(mapping.collect_events())


def _migration_job_events() -> list[Any]:
    job = MigrationJob.create(
        job_id=uuid4(),
        job_type="policy_conversion",
        source_system="LegacyGovernanceV1",
        source_config={"format": "json", "policy_file_path": "/srv/legacy"},
        parameters={"format": "json", "activate": False},
        source={"path": "/srv/legacy", "filename": "legacy", "media_type": None},
        meta=META,
    )
    job.claim("host:1:a", datetime.now(UTC), 30, META)
    job.renew("host:1:a", 30, META)
    job.progress(
        "host:1:a",
        total=3,
        processed=2,
        successful=1,
        failed=1,
        checkpoint={"next": 2},
        summary={"policies": 2, "failed_items": 1},
        failures=[{"item": "p-2", "error": "bad", "recommendation": "fix"}],
        meta=META,
    )
    job.complete(
        "host:1:a", counts=(3, 3, 2, 1), result_summary={"converted_policies": 2}, meta=META
    )
    cancelled = MigrationJob.create(
        job_id=uuid4(),
        job_type="policy_conversion",
        source_system="Legacy",
        source_config={},
        parameters={},
        source=None,
        meta=META,
    )
    cancelled.cancel(META)
    failed = MigrationJob.create(
        job_id=uuid4(),
        job_type="policy_conversion",
        source_system="Legacy",
        source_config={},
        parameters={},
        source=None,
        meta=META,
    )
    failed.claim("host:2:b", datetime.now(UTC), 30, META)
    failed.fail("host:2:b", "RuntimeError: boom", META)
    return [*job.collect_events(), *cancelled.collect_events(), *failed.collect_events()]


class _ReversingSealer:
    """Seals by reversing (the schemas see only the shape of a sealed value)."""

    def new_key(self, tenant_id: object) -> str:
        return "5b0f1b5e-8f1c-4a8e-9d3f-2a6b8c1d4e5f"

    def seal(self, tenant_id: object, key_id: str, path: str, plaintext: str) -> str:
        return "acgs:v1:" + plaintext[::-1]

    def open(self, tenant_id: object, key_id: str, path: str, sealed: str) -> str:
        return sealed.removeprefix("acgs:v1:")[::-1]

    def shred(self, tenant_id: object, key_id: str) -> None:
        pass


def _integration_events() -> list[Any]:
    sealer = _ReversingSealer()
    integration = Integration.register(
        integration_id=uuid4(),
        tenant_id=META.tenant_id,
        integration_type="ldap",
        name="Corporate LDAP",
        config={
            "server_url": "ldaps://ldap.acme.test:636",
            "base_dn": "dc=acme,dc=test",
            "bind_dn": "cn=svc,dc=acme,dc=test",
            "bind_password": "pw",
        },
        enabled=True,
        sealer=sealer,
        production=True,
        meta=META,
    )
    integration.update(
        {"enabled": False, "config": {"bind_password": "pw2"}},
        sealer=sealer,
        production=True,
        meta=META,
    )
    integration.record_health(HealthStatus.UNHEALTHY, "connection refused", META)
    integration.archive(META, retention_days=0)
    integration.shred_secrets(sealer, integration.purge_after or datetime.now(UTC), META)
    return list(integration.collect_events())


def _webhook_events() -> list[Any]:
    webhook, _secret = Webhook.register(
        webhook_id=uuid4(),
        tenant_id=META.tenant_id,
        target=parse_target("https://hooks.acme.test/acgs"),
        events=["policy.updated"],
        secret=None,
        enabled=True,
        sealer=_ReversingSealer(),
        meta=META,
        problems=[],
    )
    webhook.change({"events": ["policy.updated", "migration.completed"]}, None, META, [])
    webhook.disable_after_failures(10, "answered 503", META)
    webhook.delete(META)
    return list(webhook.collect_events())


def _registry_events() -> list[Any]:
    policy = TenantPolicy.register(
        owner=META.tenant_id, policy_key="finance-api", name="Finance", system_wide=False, meta=META
    )
    for role in ("admin", "owner"):
        policy.add_version(
            source=f'POLICY finance-api\nRULE r WHEN user.role == "{role}" THEN ALLOW\n',
            source_format="dsl",
            rego=f"package acgs.policies.finance_api\n# {role}\n",
            package="acgs.policies.finance_api",
            conversion_status="converted",
            report={"status": "converted", "warnings": [], "coverage": 1.0},
            meta=META,
        )
    policy.activate(2, META)
    policy.activate(1, META)
    policy.retire(META)
    settings = DecisionLogSettings.create(
        tenant_id=META.tenant_id, log_input=False, fields=(), meta=META
    )
    settings.change(log_input=True, fields=("user.ssn",), meta=META)
    return [*policy.collect_events(), *settings.collect_events()]


@pytest.fixture
def codec() -> EventCodec:
    codec = EventCodec(SchemaRegistryClient.new_client({"url": "mock://"}))
    codec.register()
    return codec


def test_every_domain_event_type_has_a_schema() -> None:
    classes = domain_event_classes()
    assert {c.__qualname__ for c in classes} >= {"Tenant.Created", "AuditEntry.Recorded"}
    missing = [c.__qualname__ for c in classes if record_name(c) not in CATALOG]
    assert missing == []


def test_an_event_type_without_a_schema_is_reported(tmp_path: Path) -> None:
    shutil.copytree(CATALOG.root, tmp_path, dirs_exist_ok=True)
    (tmp_path / "tenant" / "Suspended.avsc").unlink()
    catalog = SchemaCatalog(tmp_path)
    with pytest.raises(SchemaNotFound, match=r"acgs\.events\.tenant\.Suspended"):
        catalog.get(record_name(Tenant.Suspended))


def test_the_samples_cover_every_event_type() -> None:
    assert {type(e) for e in sample_events()} == set(domain_event_classes())


@pytest.mark.parametrize("event", sample_events(), ids=lambda e: type(e).__qualname__)
def test_each_schema_round_trips_its_event(codec: EventCodec, event: Any) -> None:
    value = codec.encode_event(event, "governance-events")

    decoded = codec.decode(value, "governance-events")

    assert value[0] == 0
    assert codec.event_from_record(decoded) == event
    assert decoded["event_id"] == str(event_id(event.originator_id, event.originator_version))
    assert decoded["tenant_id"] == str(META.tenant_id)
    assert decoded["actor"] == {
        "sub": "alice",
        "roles": ["EXECUTIVE", "AUDITOR"],
        "auth_method": "oidc",
        "actor_type": "user",
    }


def test_an_event_that_does_not_fit_its_schema_is_an_encode_error(codec: EventCodec) -> None:
    entry = AuditEntry.record(
        entry_id=uuid4(),
        category="integration",
        action="x",
        result="success",
        target_resource=None,
        details={"not_json": uuid4()},
        meta=META,
    )
    with pytest.raises(EncodeError):
        codec.encode_event(entry.collect_events()[0], "governance-events")


def test_every_event_schema_begins_with_the_envelope() -> None:
    envelope = CATALOG.get(ENVELOPE).definition["fields"]
    for cls in domain_event_classes():
        fields = CATALOG.get(record_name(cls)).definition["fields"]
        assert [(f["name"], json.dumps(f["type"])) for f in fields[: len(envelope)]] == [
            (f["name"], json.dumps(f["type"])) for f in envelope
        ], record_name(cls)


@pytest.mark.parametrize("name", [n for n in CATALOG.names() if n != ENVELOPE])
def test_each_schema_is_compatible_with_its_released_versions(name: str) -> None:
    released = CATALOG.released(name)
    assert released, f"{name} has no released version in schemas/avro/released/"
    problems = incompatibilities(CATALOG.get(name).text, [s.text for _, s in released], "FULL")
    assert problems == []


def _record(*fields: dict[str, Any]) -> str:
    return json.dumps({"type": "record", "name": "T", "namespace": "x", "fields": list(fields)})


A = {"name": "a", "type": "string"}
B_DEFAULT = {"name": "b", "type": "int", "default": 0}
B_REQUIRED = {"name": "b", "type": "int"}


def test_adding_a_field_with_a_default_is_compatible() -> None:
    assert incompatibilities(_record(A, B_DEFAULT), [_record(A)], "FULL") == []


def test_adding_a_required_field_is_not_backward_compatible() -> None:
    problems = incompatibilities(_record(A, B_REQUIRED), [_record(A)], "BACKWARD")
    assert problems == ["the new schema cannot read data written with version 1"]


def test_removing_a_required_field_is_not_forward_compatible() -> None:
    problems = incompatibilities(_record(A), [_record(A, B_REQUIRED)], "FULL")
    assert problems == ["version 1 cannot read data written with the new schema"]


def test_the_external_event_reader_is_in_the_catalogue() -> None:
    assert EXTERNAL_EVENT in CATALOG
    assert "payload" in CATALOG.get(EXTERNAL_EVENT).json_fields


@pytest.mark.parametrize("event", sample_events(), ids=lambda e: type(e).__qualname__)
def test_the_fast_path_writes_the_same_bytes_as_the_registry_serializer(
    codec: EventCodec, event: Any
) -> None:
    first = codec.encode_event(event, "governance-events")  # through the AvroSerializer
    again = codec.encode_event(event, "governance-events")  # framed with fastavro directly
    schema = codec.plan(type(event)).schema
    reference = codec.serialize_with_registry(schema, codec.event_record(event), "t")

    assert first == again == reference


def test_an_unreachable_registry_is_a_transient_failure_not_an_encode_error() -> None:
    from infra.kafka.codec import RegistryUnavailable  # noqa: PLC0415
    from infra.kafka.local_broker import free_port  # noqa: PLC0415

    registry = SchemaRegistryClient({"url": f"http://127.0.0.1:{free_port()}"})
    codec = EventCodec(registry)
    try:
        with pytest.raises(RegistryUnavailable):
            codec.encode_event(sample_events()[0], "governance-events")
    finally:
        codec.close()
