"""The composition root: builds the system from settings. Nothing else wires adapters."""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from typing import Any

import psycopg
from psycopg.conninfo import conninfo_to_dict

from api.settings import Settings, SettingsError
from commands.application import GovernanceApplication
from commands.tenants import TenantCommands
from infra.postgres.database import APP_ROLE, PROJECTOR_ROLE, Database, role_conninfo
from infra.postgres.embedded import EmbeddedPostgres
from infra.postgres.migrate import migrate
from infra.postgres.projection_runner import ProjectionRunner, projection_status
from projections.audit_log import AuditLogProjection
from projections.base import Projection
from projections.tenants import TenantsProjection

PERSISTENCE_MODULE = "infra.postgres.event_store:TenantScopedFactory"
PARTITION_CHECK_SECONDS = 6 * 3600
log = logging.getLogger(__name__)


def all_projections() -> list[Projection]:
    return [TenantsProjection(), AuditLogProjection()]


def open_database(settings: Settings) -> tuple[str, EmbeddedPostgres | None]:
    """The admin connection string, starting (or finding) the embedded server if configured so."""
    if settings.database_url is not None:
        return settings.database_url, None
    embedded = EmbeddedPostgres(settings.data_dir)
    return embedded.start(), embedded


def event_store_env(admin_url: str, settings: Settings) -> dict[str, str]:
    params = conninfo_to_dict(role_conninfo(admin_url, APP_ROLE, settings.app_db_password))
    return {
        "PERSISTENCE_MODULE": PERSISTENCE_MODULE,
        "POSTGRES_DBNAME": str(params.get("dbname", "acgs")),
        "POSTGRES_HOST": str(params.get("host", "127.0.0.1")),
        "POSTGRES_PORT": str(params.get("port", "5432")),
        "POSTGRES_USER": APP_ROLE,
        "POSTGRES_PASSWORD": str(params.get("password", "")),
        "POSTGRES_POOL_SIZE": str(settings.pool_size),
        "POSTGRES_MAX_OVERFLOW": "0",
        "POSTGRES_CONNECT_TIMEOUT": "10",
        "CREATE_TABLE": "n",
    }


@dataclass
class System:
    """Everything a process needs, built once; `close()` releases it in reverse order."""

    settings: Settings
    admin_url: str
    embedded: EmbeddedPostgres | None
    app: GovernanceApplication
    tenants: TenantCommands
    database: Database
    runners: list[ProjectionRunner] = field(default_factory=list)
    relay: Any = None  # infra.kafka.relay.KafkaRelay when streaming is on (decisions 8)
    _stop: threading.Event = field(default_factory=threading.Event)
    _threads: list[threading.Thread] = field(default_factory=list)

    @property
    def app_conninfo(self) -> str:
        return role_conninfo(self.admin_url, APP_ROLE, self.settings.app_db_password)

    @property
    def projector_conninfo(self) -> str:
        return role_conninfo(self.admin_url, PROJECTOR_ROLE, self.settings.projector_db_password)

    def runner(self, name: str) -> ProjectionRunner:
        for runner in self.runners:
            if runner.name == name:
                return runner
        names = ", ".join(r.name for r in self.runners)
        msg = f"unknown projection {name!r}; known: {names}"
        raise KeyError(msg)

    def ensure_audit_partitions(self) -> int:
        """Create the audit log's monthly partitions from last month to three months ahead."""
        with psycopg.connect(self.projector_conninfo, autocommit=True) as conn:
            row = conn.execute("SELECT ensure_audit_partitions(1, 3)").fetchone()
        return int(row[0]) if row else 0

    def _maintain(self) -> None:
        while not self._stop.wait(PARTITION_CHECK_SECONDS):
            try:
                self.ensure_audit_partitions()
            except psycopg.Error:
                log.warning("could not create audit partitions ahead; will retry")

    def start_projections(self) -> None:
        self.ensure_audit_partitions()
        maintenance = threading.Thread(target=self._maintain, name="maintenance", daemon=True)
        maintenance.start()
        self._threads.append(maintenance)
        for runner in self.runners:
            thread = threading.Thread(
                target=runner.run, args=(self._stop,), name=f"projection-{runner.name}", daemon=True
            )
            thread.start()
            self._threads.append(thread)
        self.start_streaming()

    def start_streaming(self) -> None:
        """Start the Kafka relay (when streaming is configured) in its own thread."""
        if self.relay is not None:
            thread = threading.Thread(
                target=self.relay.run, args=(self._stop,), name="kafka-relay", daemon=True
            )
            thread.start()
            self._threads.append(thread)

    def projection_status(self, *, own_only: bool = False) -> list[dict[str, Any]]:
        """Every tracked projection's lag, or (`own_only`) only those this system runs: the
        read models it serves and its relay, not whatever else has a position row."""
        with psycopg.connect(self.projector_conninfo, autocommit=True) as conn:
            status = projection_status(conn)
        if own_only:
            own = {r.name for r in self.runners} | ({self.relay.name} if self.relay else set())
            status = [s for s in status if s["name"] in own]
        return status

    def close(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=5)
        for runner in self.runners:
            runner.close()
        if self.relay is not None:
            self.relay.close()
        self.app.close()
        if self.embedded is not None:
            self.embedded.stop()


def build(settings: Settings, *, apply_migrations: bool | None = None) -> System:
    """Connect (starting the embedded server when configured), migrate, and wire everything.

    Migrations run by default in the embedded profile; in production `acgs db migrate` runs them.
    """
    admin_url, embedded = open_database(settings)
    try:
        if apply_migrations if apply_migrations is not None else embedded is not None:
            migrate(admin_url)
        app = GovernanceApplication(env=event_store_env(admin_url, settings))
        tenants = TenantCommands(app, settings.constitutional_hash)
        tenants.bootstrap_system_tenant()
        system = System(
            settings=settings,
            admin_url=admin_url,
            embedded=embedded,
            app=app,
            tenants=tenants,
            database=Database(
                role_conninfo(admin_url, APP_ROLE, settings.app_db_password), settings.pool_size
            ),
        )
        system.runners = [
            ProjectionRunner(system.projector_conninfo, p, app.mapper) for p in all_projections()
        ]
        if settings.kafka_bootstrap_servers:
            system.relay = build_relay(system, kafka_config(settings))
    except BaseException:
        if embedded is not None:
            embedded.stop()
        raise
    return system


def kafka_config(settings: Settings) -> Any:
    """The streaming configuration (an infra.kafka.config.KafkaConfig; needs the `streaming`
    extra). Streaming is on when ACGS_KAFKA_BOOTSTRAP_SERVERS is set."""
    from infra.kafka.config import KafkaConfig  # noqa: PLC0415 - optional extra

    if not settings.kafka_bootstrap_servers:
        msg = "ACGS_KAFKA_BOOTSTRAP_SERVERS is not set"
        raise SettingsError(msg)
    if not settings.schema_registry_url:
        msg = "ACGS_SCHEMA_REGISTRY_URL is required when ACGS_KAFKA_BOOTSTRAP_SERVERS is set"
        raise SettingsError(msg)
    return KafkaConfig(
        bootstrap_servers=settings.kafka_bootstrap_servers,
        schema_registry_url=settings.schema_registry_url,
        security_protocol=settings.kafka_security_protocol,
        sasl_mechanism=settings.kafka_sasl_mechanism,
        sasl_username=settings.kafka_sasl_username,
        sasl_password=settings.kafka_sasl_password,
        schema_registry_basic_auth=settings.schema_registry_basic_auth,
        relay_batch_size=settings.kafka_relay_batch_size,
        linger_ms=settings.kafka_linger_ms,
        session_timeout_ms=settings.kafka_session_timeout_ms,
    )


def build_relay(system: System, config: Any, *, name: str = "kafka_relay") -> Any:
    """The Kafka relay over this system's event store (an infra.kafka.relay.KafkaRelay)."""
    from confluent_kafka.schema_registry import SchemaRegistryClient  # noqa: PLC0415

    from infra.kafka.codec import EventCodec  # noqa: PLC0415 - optional extra
    from infra.kafka.relay import KafkaRelay  # noqa: PLC0415
    from projections.audit_log import audit_record  # noqa: PLC0415

    codec = EventCodec(SchemaRegistryClient(config.registry_conf()))
    return KafkaRelay(
        system.projector_conninfo,
        system.app.mapper,
        codec,
        config,
        audit_record=audit_record,
        name=name,
    )
