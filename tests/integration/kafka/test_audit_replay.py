"""`acgs audit replay --to kafka`: a tenant's audit stream re-sent, in chain order, to the
audit-trail topic of the real broker, each message the topic's Avro audit record."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from click.testing import CliRunner
from confluent_kafka.schema_registry import SchemaRegistryClient

from api.bootstrap import System
from api.cli.main import cli
from api.settings import Settings
from commands.tenants import CreateTenant
from infra.kafka.codec import EventCodec
from infra.kafka.config import KafkaConfig
from tests.integration.kafka.support import PLATFORM, read_topic
from tests.integration.spine.support import catch_up, seed_audit_rows

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]


def test_replay_resends_a_tenant_stream_from_a_position(
    system: System, settings: Settings, kafka_config: KafkaConfig, unique: str
) -> None:
    tenant = system.tenants.create(
        PLATFORM,
        CreateTenant(
            tenant_name=f"Replay {unique}",
            tenant_slug=f"replay-{unique}",
            admin_email="ops@replay.test",
        ),
    )
    catch_up(system)
    seed_audit_rows(
        system.projector_conninfo, tenant.id, [datetime(2000, 1, d, tzinfo=UTC) for d in (1, 2, 3)]
    )
    default = KafkaConfig(
        bootstrap_servers=kafka_config.bootstrap_servers,
        schema_registry_url=kafka_config.schema_registry_url,
    )
    env = {
        "ACGS_DATABASE_URL": str(settings.database_url),
        "ACGS_DATA_DIR": str(settings.data_dir),
        "ACGS_KAFKA_BOOTSTRAP_SERVERS": default.bootstrap_servers,
        "ACGS_SCHEMA_REGISTRY_URL": default.schema_registry_url,
    }
    result = CliRunner().invoke(
        cli, ["audit", "replay", "--tenant", tenant.tenant_slug, "--from", "2"], env=env
    )
    assert result.exit_code == 0, result.output
    assert "replayed 3 audit rows" in result.output
    topic = default.topics.audit_trail
    mine = [m for m in read_topic(default, topic, at_least=3) if m.key() == str(tenant.id).encode()]
    codec = EventCodec(SchemaRegistryClient(default.registry_conf()))
    try:
        records = [codec.decode(m.value(), topic) for m in mine]
    finally:
        codec.close()
    assert [r["action"] for r in records] == ["seed", "seed", "seed"]
    assert [json.loads(r["details"]) for r in records] == [{"n": 0}, {"n": 1}, {"n": 2}]
    by_time = CliRunner().invoke(
        cli,
        ["audit", "replay", "--tenant", tenant.tenant_slug, "--from", "2000-01-03T00:00:00Z"],
        env=env,
    )
    assert "replayed 2 audit rows" in by_time.output, by_time.output  # the seq-3 seed, the creation
