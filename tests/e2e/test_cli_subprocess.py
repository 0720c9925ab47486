"""The `acgs` commands run as a user runs them: the installed console script in a subprocess,
configured by environment variables only. Each test checks what the command prints and leaves
behind (database, keys, topics), with expected values written out by hand.

They run against a database of their own on the session's PostgreSQL (created empty here), and
the session's Kafka broker and schema registry (default topic names: no other test uses them);
`serve --kafka-local` starts its own broker and registry, as it does for a developer."""

from __future__ import annotations

import json
import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit
from uuid import UUID

import httpx
import psycopg
import pytest

from api.settings import Settings
from api.tokens import key_ring, token_verifier
from domain.maci import MaciRole
from domain.tenancy import SYSTEM_TENANT_ID
from infra.kafka.local_broker import TansuBroker
from infra.kafka.schema_registry_server import SchemaRegistryHTTPServer
from infra.postgres.migrate import migrate
from infra.tokens import TokenRejectedError
from tests.peers.http import HASH, free_port, wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.postgres, pytest.mark.slow]

ACGS = str(Path(sys.executable).with_name("acgs"))  # the console script `pip install` made
KID = re.compile(r"^\d{8}T\d{12}-[0-9a-f]{8}$")
MIGRATIONS = [
    "applied 0001_roles_and_baseline",
    "applied 0002_tenant_tables",
    "applied 0003_multitenancy",
    "applied 0004_event_store",
    "applied 0005_row_level_security",
    "applied 0006_idempotency",
    "applied 0007_consumed_events",
    "applied 0008_integrations",
    "applied 0009_policy_registry",
    "applied 0010_audit_api",
    "applied 0011_sessions_and_role_mappings",
    "applied 0012_tenant_sign_in_settings",
    "applied 0013_sign_in_requests",
    "applied 0014_saml",
    "applied 0015_oidc_upstream_tokens",
    "applied 0017_sink_dead_letters",
    "applied 0018_decision_import",
    "applied 0019_migration_jobs",
    "applied 0020_shadow_mode",
    "applied 0021_gap_analysis",
    "applied 0022_webhooks",
    "applied 0023_warehouse_runs",
    "applied 0025_decision_import_keys",
]


def _env(data_dir: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ACGS_")}
    env.update(ACGS_DATA_DIR=str(data_dir), ACGS_LOG_LEVEL="WARNING", **extra)
    return env


def acgs(*args: str, env: dict[str, str], timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [ACGS, *args], env=env, capture_output=True, text=True, timeout=timeout, check=False
    )


def _database(admin_url: str, name: str) -> str:
    """`admin_url` pointing at the database `name` instead."""
    parts = urlsplit(admin_url)
    return urlunsplit(parts._replace(path=f"/{name}"))


@pytest.fixture
def empty_database(pg_admin_url: str, unique: str) -> Iterator[str]:
    name = f"cli_{unique}"
    with psycopg.connect(pg_admin_url, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    yield _database(pg_admin_url, name)
    with psycopg.connect(pg_admin_url, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE {name} WITH (FORCE)")


@pytest.fixture(scope="module")
def cli_database(pg_admin_url: str) -> Iterator[str]:
    """A migrated database of this module's own (its log holds only what these tests record)."""
    name = f"cli_module_{os.getpid()}"
    with psycopg.connect(pg_admin_url, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {name}")
    url = _database(pg_admin_url, name)
    migrate(url)
    yield url
    with psycopg.connect(pg_admin_url, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE {name} WITH (FORCE)")


def _scalar(url: str, sql: str, *params: Any) -> Any:
    with psycopg.connect(url) as conn:
        row = conn.execute(sql, list(params)).fetchone()
    assert row is not None
    return row[0]


# --- acgs db migrate ---------------------------------------------------------------------------


def test_db_migrate_applies_every_migration_once(empty_database: str, tmp_path: Path) -> None:
    env = _env(tmp_path, ACGS_DATABASE_URL=empty_database)
    first = acgs("db", "migrate", env=env)
    assert first.returncode == 0, first.stderr
    assert first.stdout.splitlines() == MIGRATIONS
    again = acgs("db", "migrate", env=env)
    assert again.returncode == 0, again.stderr
    assert again.stdout.splitlines() == ["database is up to date"]
    assert _scalar(empty_database, "SELECT to_regclass('governance_events') IS NOT NULL") is True


# --- acgs token ---------------------------------------------------------------------------------


def _kid_of(token: str) -> str:
    import base64  # noqa: PLC0415

    head = token.split(".", maxsplit=1)[0]
    header = json.loads(base64.urlsafe_b64decode(head + "=" * (-len(head) % 4)))
    return str(header["kid"])


def test_token_keys_add_list_retire_and_issue_end_to_end(
    cli_database: str, tmp_path: Path, unique: str
) -> None:
    env = _env(tmp_path, ACGS_DATABASE_URL=cli_database)
    assert acgs("token", "keys", "list", env=env).stdout == ""  # no key yet

    added = acgs("token", "keys", "add", env=env)
    assert added.returncode == 0, added.stderr
    first = added.stdout.strip()
    assert KID.match(first), first
    issued = acgs(
        "token", "issue", "--platform", "--role", "auditor", "--sub", f"cli-{unique}", env=env
    )
    assert issued.returncode == 0, issued.stderr
    old_token = issued.stdout.strip()
    assert _kid_of(old_token) == first

    second = acgs("token", "keys", "add", env=env).stdout.strip()
    assert KID.match(second)
    assert second > first  # key ids sort by age
    listed = acgs("token", "keys", "list", env=env).stdout.splitlines()
    assert [line.split()[:2] for line in listed] == [[first, "active"], [second, "active"]]
    assert [line.endswith("(signing)") for line in listed] == [False, True]
    new_token = acgs(
        "token", "issue", "--platform", "--role", "EXECUTIVE", "--role", "MONITOR", env=env
    ).stdout.strip()
    assert _kid_of(new_token) == second

    retired = acgs("token", "keys", "retire", first, env=env)
    assert retired.returncode == 0, retired.stderr
    assert retired.stdout.strip() == f"retired {first}"
    listed = acgs("token", "keys", "list", env=env).stdout.splitlines()
    assert [line.split()[:2] for line in listed] == [[first, "retired"], [second, "active"]]

    settings = Settings.from_env(env)
    verifier = token_verifier(settings, key_ring(settings))
    claims = verifier.verify(new_token)
    assert (claims.tenant_id, claims.roles) == (
        SYSTEM_TENANT_ID,
        (MaciRole.EXECUTIVE, MaciRole.MONITOR),
    )
    with pytest.raises(TokenRejectedError):
        verifier.verify(old_token)  # its key is retired

    last = acgs("token", "keys", "retire", second, env=env)
    assert last.returncode != 0
    assert "only active key" in last.stderr
    assert acgs("token", "keys", "retire", "../../etc/passwd", env=env).returncode != 0
    # each issuance is audited in the token's tenant, by the operator at the console
    audited = _scalar(
        cli_database,
        "SELECT count(*) FROM governance_events WHERE topic LIKE '%%AuditEntry%%' "
        "AND convert_from(state, 'UTF8') LIKE %s",
        f"%cli-{unique}%",
    )
    assert audited == 1


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--platform"], "--role"),  # a role is required
        (["--platform", "--role", "KING"], "KING"),
        (["--role", "MONITOR"], "exactly one of --platform or --tenant"),
        (["--role", "MONITOR", "--platform", "--tenant", "acme"], "exactly one"),
        (["--platform", "--role", "MONITOR", "--ttl", "0"], "--ttl"),
        (["--platform", "--role", "MONITOR", "--ttl", "604801"], "--ttl"),
    ],
)
def test_token_issue_refuses_bad_usage_without_printing_a_token(
    tmp_path: Path, args: list[str], message: str
) -> None:
    refused = acgs("token", "issue", *args, env=_env(tmp_path))
    assert refused.returncode == 2  # click's usage error
    assert refused.stdout == ""
    assert message in refused.stderr


# --- acgs projections status / acgs replay --------------------------------------------------------


def test_projections_status_and_replay(cli_database: str, tmp_path: Path) -> None:
    env = _env(tmp_path, ACGS_DATABASE_URL=cli_database)
    assert acgs("token", "issue", "--platform", "--role", "MONITOR", env=env).returncode == 0
    head = _scalar(cli_database, "SELECT max(notification_id) FROM governance_events")
    events = _scalar(cli_database, "SELECT count(*) FROM governance_events")

    for _ in range(2):  # a replay rebuilds from the start, however often it runs
        replayed = acgs("replay", "audit_log", env=env)
        assert replayed.returncode == 0, replayed.stderr
        assert re.fullmatch(
            rf"replayed audit_log: {events} events in \d+\.\d\d s\n", replayed.stdout
        )
        assert _scalar(cli_database, "SELECT count(*) FROM tenant_audit_log") == events
    assert acgs("replay", "tenants", env=env).stdout.startswith(f"replayed tenants: {events} ")

    status = acgs("projections", "status", env=env)
    assert status.returncode == 0, status.stderr
    rows = {line.split()[0]: line.split() for line in status.stdout.splitlines()}
    assert rows["audit_log"][1:5] == ["position", str(head), "head", str(head)]
    assert rows["audit_log"][5:8] == ["behind", "0", "events"]
    assert rows["tenants"][1:8] == [
        "position",
        str(head),
        "head",
        str(head),
        "behind",
        "0",
        "events",
    ]

    assert acgs("replay", "no_such_projection", env=env).returncode == 2


# --- acgs worker ---------------------------------------------------------------------------------


@dataclass
class Running:
    """A long-running `acgs` process whose stdout lines are collected as they come."""

    process: subprocess.Popen[str]
    lines: list[str] = field(default_factory=list)
    _arrived: queue.Queue[str] = field(default_factory=queue.Queue)

    def __post_init__(self) -> None:
        self._pumping = threading.Thread(target=self._pump, daemon=True)
        self._pumping.start()

    def _pump(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self._arrived.put(line.rstrip("\n"))

    def wait_for_line(self, pattern: str, timeout: float = 60) -> re.Match[str]:
        deadline = time.monotonic() + timeout
        while True:
            for line in self.lines:
                if found := re.search(pattern, line):
                    return found
            if time.monotonic() > deadline or self.process.poll() is not None:
                pytest.fail(
                    f"no line matching {pattern!r} (exit {self.process.poll()}): {self.lines}"
                )
            try:
                self.lines.append(self._arrived.get(timeout=0.2))
            except queue.Empty:
                continue

    def interrupt(self) -> int:
        self.process.send_signal(signal.SIGINT)
        try:
            code = self.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.process.kill()
            code = self.process.wait()
        self._pumping.join(timeout=10)
        assert self.process.stdout is not None
        self.process.stdout.close()
        while not self._arrived.empty():
            self.lines.append(self._arrived.get())
        return code


def start(*args: str, env: dict[str, str]) -> Running:
    process = subprocess.Popen(
        [ACGS, *args], env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
    )
    return Running(process)


def test_worker_runs_every_projection_the_relay_and_the_consumer(
    cli_database: str,
    tmp_path: Path,
    kafka_broker: TansuBroker,
    schema_registry: SchemaRegistryHTTPServer,
    unique: str,
) -> None:
    from confluent_kafka import Producer  # noqa: PLC0415
    from confluent_kafka.schema_registry import (  # noqa: PLC0415
        SchemaRegistryClient,
        record_subject_name_strategy,
    )
    from confluent_kafka.schema_registry.avro import AvroSerializer  # noqa: PLC0415
    from confluent_kafka.serialization import MessageField, SerializationContext  # noqa: PLC0415

    from api.bootstrap import build, kafka_config  # noqa: PLC0415
    from commands.context import CommandContext, Principal  # noqa: PLC0415
    from commands.tenants import CreateTenant  # noqa: PLC0415
    from tests.integration.kafka.support import headers_of, read_topic  # noqa: PLC0415
    from tests.integration.kafka.test_consumers import PARTNER_SCHEMA, partner_event  # noqa: PLC0415

    env = _env(
        tmp_path,
        ACGS_DATABASE_URL=cli_database,
        ACGS_KAFKA_BOOTSTRAP_SERVERS=kafka_broker.bootstrap_servers,
        ACGS_SCHEMA_REGISTRY_URL=schema_registry.url,
        ACGS_KAFKA_SESSION_TIMEOUT_MS="2500",
    )
    worker = start("worker", env=env)
    try:
        running = worker.wait_for_line(r"^acgs worker: running (.*)  \(Ctrl-C stops\)$")
        assert sorted(running.group(1).split(", ")) == [
            "audit_exports",
            "audit_log",
            "audit_partitions",
            "audit_retention",
            "decision_log",
            "external_events",
            "gap_reviews",
            "integration_health",
            "integrations",
            "kafka_relay",
            "migration_jobs",
            "migrations",
            "policies",
            "policy_cache",
            "role_cache",
            "role_mappings",
            "sinks",
            "tenants",
            "warehouses",
            "webhook_deliveries",
            "webhooks",
        ]

        # a tenant recorded by another process: the worker's runners and relay pick it up
        settings = Settings.from_env(env)
        system = build(settings)
        try:
            operator = CommandContext(
                Principal(f"worker-{unique}", SYSTEM_TENANT_ID, (MaciRole.EXECUTIVE,)), HASH
            )
            tenant = system.tenants.create(
                operator, CreateTenant(f"Worker {unique}", f"w-{unique}", "w@example.com")
            )
            config = kafka_config(settings)
            # an event from a partner system on external-events, for the worker's consumer
            registry = SchemaRegistryClient(config.registry_conf())
            serialize = AvroSerializer(
                registry,
                json.dumps(PARTNER_SCHEMA),
                conf={"subject.name.strategy": record_subject_name_strategy},
            )
            topic = config.topics.external_events
            partner = partner_event(tenant.id)
            value = serialize(partner, SerializationContext(topic, MessageField.VALUE))
            producer = Producer(config.client_conf())
            producer.produce(topic, value, str(tenant.id).encode())
            assert producer.flush(10) == 0
            registry.close()

            def caught_up() -> bool:
                # every follower of the worker has recorded a position (the relay records its
                # first one only once it has published), and none is behind
                status = system.projection_status()
                names = {row["name"] for row in status}
                return {"tenants", "audit_log", "kafka_relay"} <= names and all(
                    row["events_behind"] == 0 for row in status
                )

            wait_for(
                lambda: (
                    _scalar(
                        cli_database,
                        "SELECT count(*) FROM tenant_audit_log WHERE tenant_id = %s "
                        "AND event_category = 'integration'",
                        tenant.id,
                    )
                    == 1
                ),
                timeout=60,
            )
            wait_for(caught_up, timeout=60)
            names = {row["name"] for row in system.projection_status()}
            assert {"tenants", "audit_log", "kafka_relay"} <= names
        finally:
            system.close()
        # the tenants runner projected it, the relay published it
        assert _scalar(
            cli_database, "SELECT status FROM tenants WHERE tenant_id = %s", tenant.id
        ) == ("active")
        published = read_topic(config, config.topics.governance_events, at_least=1)
        keyed = [m for m in published if m.key() == str(tenant.id).encode()]
        assert [headers_of(m)["event_type"] for m in keyed][:1] == [b"tenant.created"]
    finally:
        code = worker.interrupt()
    assert code == 0
    assert worker.lines[-1] == "acgs worker: stopped"


def _answers(http: httpx.Client) -> bool:
    try:
        return http.get("/healthz").status_code == 200
    except httpx.TransportError:
        return False


# --- acgs serve --kafka-local + acgs streaming tail ----------------------------------------------


def test_serve_with_a_local_kafka_streams_what_the_api_records(
    cli_database: str, tmp_path: Path, unique: str
) -> None:
    port = free_port()
    env = _env(tmp_path, ACGS_DATABASE_URL=cli_database, ACGS_HTTP_PORT=str(port))
    served = start("serve", "--kafka-local", env=env)
    try:
        local = served.wait_for_line(
            r"^acgs: local Kafka broker on (\S+), schema registry on (\S+)$"
        )
        bootstrap, registry_url = local.group(1), local.group(2)
        assert bootstrap.startswith("127.0.0.1:")
        assert registry_url.startswith("http://127.0.0.1:")
        served.wait_for_line(rf"^acgs: listening on http://127\.0\.0\.1:{port}")
        token_line = served.wait_for_line(r"^acgs: first start - a platform EXECUTIVE token")
        assert token_line
        token = served.lines[served.lines.index(token_line.string) + 1]
        hdr = {"Authorization": f"Bearer {token}", "X-Constitutional-Hash": HASH}
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", headers=hdr, timeout=30) as http:
            wait_for(lambda: _answers(http), timeout=30)  # it prints the line, then binds
            created = http.post(
                "/v1/tenants",
                json={
                    "tenant_name": f"Streamed {unique}",
                    "tenant_slug": f"streamed-{unique}",
                    "admin_email": "s@streamed.example.com",
                },
            )
            assert created.status_code == 201, created.text
        tenant_id = created.json()["tenant_id"]

        tail_env = _env(
            tmp_path,
            ACGS_KAFKA_BOOTSTRAP_SERVERS=bootstrap,
            ACGS_SCHEMA_REGISTRY_URL=registry_url,
        )

        def tailed() -> list[dict[str, Any]]:
            result = acgs(
                "streaming",
                "tail",
                "--topic",
                "governance-events",
                "--timeout",
                "3",
                env=tail_env,
            )
            assert result.returncode == 0, result.stderr
            return [json.loads(line) for line in result.stdout.splitlines()]

        lines = wait_for(
            lambda: [m for m in tailed() if m["key"] == tenant_id], timeout=60, interval=0.5
        )
        first = lines[0]
        assert first["headers"]["event_type"] == "tenant.created"
        assert first["headers"]["constitutional_hash"] == HASH
        assert first["value"]["tenant_slug"] == f"streamed-{unique}"
        assert UUID(first["value"]["aggregate_id"]) == UUID(tenant_id)
        audit = acgs(
            "streaming",
            "tail",
            "--topic",
            "audit-trail",
            "--limit",
            "1",
            "--timeout",
            "10",
            env=tail_env,
        )
        assert audit.returncode == 0, audit.stderr
        assert len(audit.stdout.splitlines()) == 1
    finally:
        served.interrupt()
    assert served.lines[-1] == "acgs: stopped"
