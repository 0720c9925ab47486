"""The composition root: builds the system from settings, including the one list of background
workers that `acgs serve` and `acgs worker` both run under the supervisor. Two more modules
belong to it: `api/tokens.py` (the token pieces, shared by the HTTP API and the CLI) and
`api/http/services.py` (what the HTTP layer uses). Only `acgs streaming tail`, a development
tool, builds a Kafka client of its own."""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Collection
from dataclasses import asdict, dataclass, field, replace
from functools import partial
from typing import Any
from uuid import UUID

import psycopg
from psycopg.conninfo import conninfo_to_dict

from api.registry_follower import POLICY_CACHE, RegistryCacheFollower
from api.role_cache import ROLE_CACHE, RoleMappingCache, RoleMappingListener
from api.settings import Settings, SettingsError
from api.sink_fleet import SinkFleet
from api.warehouses import WAREHOUSES, warehouse_fleet_worker
from commands.application import GovernanceApplication
from commands.audit import AuditCommands
from commands.decision_import.kind import DecisionImportKind
from commands.decision_log import DecisionRecorder
from commands.decisions import DecisionService, RegistryCache
from commands.gap_analysis import GapAnalysisKind
from commands.gaps import GapCommands
from commands.integration_health import IntegrationHealthChecker
from commands.integrations import IntegrationCommands
from commands.migration_kinds import JobKind
from commands.migration_runner import MigrationRunner, RunnerSettings
from commands.migration_sources import JobSources
from commands.migrations import MigrationJobs
from commands.policies import PolicyCommands
from commands.policy_conversion_job import PolicyConversionKind
from commands.role_mappings import RoleMappingCommands
from commands.shadow import ShadowService
from commands.shadow_replay import ShadowReplayKind
from commands.sinks import SinkCommands
from commands.tenants import TenantCommands
from commands.webhooks import WebhookCommands
from domain.keys import KeyProvider
from domain.policy.limits import DEFAULT_LIMITS
from domain.sinks import SINK_PREFIX, follower_name, sink_scope
from domain.webhooks.aggregate import subscribed_types
from domain.webhooks.targets import AllowList
from infra import tracing
from infra.circuit_breaker import CircuitBreakers
from infra.connectivity import ConnectivityProbe
from infra.keys.envelope import EnvelopeSealer
from infra.keys.local_file import LocalKeyFile
from infra.postgres.data_keys import PostgresDataKeys
from infra.postgres.database import (
    APP_ROLE,
    POOL_WAIT_SECONDS,
    PROJECTOR_ROLE,
    Database,
    role_conninfo,
)
from infra.postgres.decision_import_store import PostgresDecisionImportStore
from infra.postgres.decision_log_store import PostgresDecisionLogStore
from infra.postgres.embedded import EmbeddedPostgres
from infra.postgres.follower import LogFollower, Projection, follower_status
from infra.postgres.gap_ledger import PostgresGapLedger
from infra.postgres.imported_decisions import PostgresImportedDecisions
from infra.postgres.integration_health import IntegrationHealthLedger
from infra.postgres.job_queue import PostgresJobQueue
from infra.postgres.legacy_decisions import PostgresQuerySource
from infra.postgres.migrate import migrate
from infra.postgres.projection_runner import ProjectionRunner
from infra.postgres.shadow_metrics import ReplayProgress, ShadowMetricsStore
from infra.postgres.sink_store import SinkStore
from infra.postgres.webhook_store import WebhookStore
from infra.postgres.worker_lease import AdvisoryLease
from infra.rego.bounded_engine import BoundedRegoEngine
from infra.rego.engine_cache import EngineCache
from infra.sinks import open_sink
from infra.supervisor import Supervisor, Worker, WorkerStatus
from infra.webhooks.resolver import TargetGuard
from infra.webhooks.sender import WebhookSender, WebhookSink
from projections.audit_export import ExportRunner
from projections.audit_log import AuditLogProjection
from projections.audit_retention import RetentionRunner
from projections.gaps import GapReviewsProjection
from projections.integrations import IntegrationsProjection
from projections.migrations import MigrationJobsProjection
from projections.policies import PoliciesProjection
from projections.role_mappings import RoleMappingsProjection
from projections.sinks.records import RecordMaker
from projections.sinks.runner import SINK_STATS, SinkRunner, SinkSettings
from projections.tenants import TenantsProjection
from projections.webhooks import SubscribedRecords, WebhooksProjection

PERSISTENCE_MODULE = "infra.postgres.event_store:TenantScopedFactory"
PARTITION_CHECK_SECONDS = 6 * 3600
AUDIT_PARTITIONS = "audit_partitions"  # the worker that creates the audit log's partitions ahead
EXTERNAL_EVENTS = "external_events"  # the worker consuming the external-events topic
INTEGRATION_HEALTH = "integration_health"  # tests enabled integrations on an interval
DECISION_LOG = "decision_log"  # the worker writing decision logs in batches
AUDIT_EXPORTS = "audit_exports"  # the worker running audit-log export jobs
AUDIT_RETENTION = "audit_retention"  # the worker purging expired audit rows
SINKS = "sinks"  # starts and stops one worker per enabled SIEM sink (api/sink_fleet.py)
MIGRATION_JOBS = "migration_jobs"  # claims and runs migration jobs (commands/migration_runner.py)
WEBHOOKS = "webhook_deliveries"  # the same, for every enabled webhook
# The workers whose effects leave the system (published, delivered, loaded, checked): one process
# at a time runs each (an advisory-lock lease); the others stand by and take over when it dies.
# Read-model projections need none (a batch is applied in the transaction that locks and moves
# the projection's position, so processes take turns and each event is applied once); caches and
# the decision log run in every process.
SINGLE_OWNER = frozenset({SINKS, WEBHOOKS, WAREHOUSES, INTEGRATION_HEALTH})
log = logging.getLogger(__name__)


class UnknownWorker(ValueError):
    """A worker name that this deployment does not have."""


def all_projections() -> list[Projection]:
    return [
        TenantsProjection(),
        AuditLogProjection(),
        IntegrationsProjection(),
        PoliciesProjection(),
        RoleMappingsProjection(),
        GapReviewsProjection(),
        MigrationJobsProjection(),
        WebhooksProjection(),
    ]


def key_provider(settings: Settings) -> KeyProvider:
    """Vault/OpenBao transit when ACGS_VAULT_ADDR is set, else the local key file under the data
    directory (the embedded default)."""
    if settings.vault_addr is None:
        return LocalKeyFile(settings.data_dir / "keys" / "integrations")
    from infra.keys.openbao import OpenBaoTransit  # noqa: PLC0415 - the `vault` extra

    return OpenBaoTransit(
        settings.vault_addr,
        token=settings.vault_token,
        role_id=settings.vault_role_id,
        secret_id=settings.vault_secret_id,
        mount=settings.vault_transit_mount,
        ca_cert=settings.vault_ca_cert,
    )


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
        # the event store pool's wait for a connection: a write is refused (503) within it
        "POSTGRES_CONNECT_TIMEOUT": str(int(POOL_WAIT_SECONDS)),
        "CREATE_TABLE": "n",
    }


@dataclass
class System:
    """Everything a process needs, built once. `start_workers()` starts the background workers
    under the supervisor; `close()` (the one stop path) stops them and releases everything in
    reverse order."""

    settings: Settings
    admin_url: str
    embedded: EmbeddedPostgres | None
    app: GovernanceApplication
    tenants: TenantCommands
    database: Database
    audit: AuditCommands
    runners: list[ProjectionRunner] = field(default_factory=list)
    relay: Any = None  # infra.kafka.relay.KafkaRelay when streaming is on
    kafka: Any = None  # infra.kafka.config.KafkaConfig when streaming is on
    supervisor: Supervisor | None = None
    integrations: IntegrationCommands | None = None
    sealer: EnvelopeSealer | None = None
    breakers: CircuitBreakers | None = None
    data_keys: PostgresDataKeys | None = None
    # The policy registry and decisions (built by `build`).
    policies: PolicyCommands | None = None
    decisions: DecisionService | None = None
    decision_log: DecisionRecorder | None = None
    policy_cache: RegistryCacheFollower | None = None
    role_mappings: RoleMappingCommands | None = None
    role_cache: RoleMappingCache | None = None  # sign-in's, kept fresh by the ROLE_CACHE worker
    sinks: SinkCommands | None = None
    gaps: GapCommands | None = None
    shadow: ShadowService | None = None
    shadow_metrics: ShadowMetricsStore | None = None
    migrations: MigrationJobs | None = None  # its `kinds`: the job kinds this deployment runs
    webhooks: WebhookCommands | None = None
    webhook_guard: TargetGuard | None = None  # the SSRF guard of every webhook delivery
    _closed: bool = False

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

    # --- background workers -------------------------------------------------------------------

    def followers(self) -> list[str]:
        """The names of this deployment's followers of the log: its read models, and its relay
        when streaming is on."""
        return [r.name for r in self.runners] + ([self.relay.name] if self.relay else [])

    def worker_names(self) -> list[str]:
        """Every background worker of this deployment, in start order."""
        names = [AUDIT_PARTITIONS, AUDIT_EXPORTS, AUDIT_RETENTION, *self._registry_workers()]
        names += [*self.followers(), INTEGRATION_HEALTH]
        names += [ROLE_CACHE] if self.role_cache is not None else []
        names += [SINKS, WEBHOOKS, WAREHOUSES]
        names += [MIGRATION_JOBS] if self.migrations is not None else []
        return names + ([EXTERNAL_EVENTS] if self.kafka is not None else [])

    def _service_workers(self) -> dict[str, Callable[[], Worker]]:
        """The workers that are not event-log followers, by name (each built on demand)."""
        workers: dict[str, Callable[[], Worker]] = {
            AUDIT_PARTITIONS: lambda: Worker(AUDIT_PARTITIONS, self._maintain_partitions),
            EXTERNAL_EVENTS: lambda: external_events_worker(self),
            INTEGRATION_HEALTH: lambda: Worker(INTEGRATION_HEALTH, self.health_checker().run),
            AUDIT_EXPORTS: lambda: Worker(AUDIT_EXPORTS, self.export_runner().run),
            AUDIT_RETENTION: lambda: Worker(AUDIT_RETENTION, self.retention_runner().run),
            SINKS: self._sink_fleet_worker,
            WEBHOOKS: self._webhook_fleet_worker,
            WAREHOUSES: lambda: warehouse_fleet_worker(self),
        }
        if self.decision_log is not None:
            recorder = self.decision_log
            workers[DECISION_LOG] = lambda: Worker(DECISION_LOG, recorder.run)
        if self.policy_cache is not None:
            cache = self.policy_cache
            workers[POLICY_CACHE] = lambda: Worker(POLICY_CACHE, cache.run, cache.close)
        if self.role_cache is not None:
            listener = RoleMappingListener(self.app_conninfo, self.role_cache)
            workers[ROLE_CACHE] = lambda: Worker(ROLE_CACHE, listener.run)
        if self.migrations is not None:
            workers[MIGRATION_JOBS] = lambda: Worker(MIGRATION_JOBS, self.migration_runner().run)
        return workers

    def migration_runner(self, **overrides: Any) -> MigrationRunner:
        """A runner of this deployment's migration jobs (settings overridable, for tests)."""
        assert self.migrations is not None
        settings = self.settings
        runner_settings = RunnerSettings(
            lease_seconds=settings.migration_lease_seconds,
            progress_seconds=settings.migration_progress_seconds,
            per_tenant_cap=settings.migration_tenant_concurrency,
            constitutional_hash=settings.constitutional_hash,
        )
        return MigrationRunner(
            self.app,
            self.migrations.kinds,
            PostgresJobQueue(self.projector_conninfo),
            settings.data_dir / "migrations" / "work",
            replace(runner_settings, **overrides),
            sealer=self.sealer,
        )

    def _worker(self, name: str) -> Worker:
        service = self._service_workers().get(name)
        if service is not None:
            worker = service()
            return self._leased(worker) if name in SINGLE_OWNER else worker
        if self.relay is not None and name == self.relay.name:
            return self._leased(Worker(name, self.relay.run))  # closed by close()
        return Worker(name, self.runner(name).run)

    def _leased(self, worker: Worker) -> Worker:
        conninfo, name = self.projector_conninfo, worker.name
        return replace(worker, lease=lambda: AdvisoryLease(conninfo, name))

    def start_workers(self, only: Collection[str] = ()) -> list[str]:
        """Start this deployment's background workers (or only those named) under the
        supervisor; returns the names started. Raises UnknownWorker for a name it lacks."""
        names = self.worker_names()
        unknown = sorted(set(only) - set(names))
        if unknown:
            msg = f"unknown worker(s): {', '.join(unknown)}; known: {', '.join(names)}"
            raise UnknownWorker(msg)
        chosen = [n for n in names if not only or n in only]
        if AUDIT_PARTITIONS in chosen:
            self.ensure_audit_partitions()  # before the audit log projection writes into them
        if self.supervisor is not None:
            msg = "the workers have been started already"
            raise RuntimeError(msg)
        self.supervisor = Supervisor([self._worker(n) for n in chosen])
        self.supervisor.start()
        return chosen

    def _sink_fleet_worker(self) -> Worker:
        fleet = SinkFleet(
            SinkStore(self.projector_conninfo),
            lambda: self.supervisor,
            self._sink_worker,
        )
        return Worker(SINKS, fleet.run, fleet.close)

    def _sink_worker(self, tenant_id: UUID, integration_id: UUID) -> Worker:
        runner = self.sink_runner(tenant_id, integration_id)
        return Worker(runner.name, runner.run, runner.close)

    def sink_runner(
        self, tenant_id: UUID, integration_id: UUID, *, kafka: Any = None
    ) -> SinkRunner:
        """The runner of one SIEM sink: its own follower of the log (its own consumer group of
        `kafka`, by default this deployment's streaming settings, when streaming is on), its
        adapter, its breaker."""
        assert self.sinks is not None
        assert self.integrations is not None
        config = self.sinks.sink(tenant_id, integration_id).clear_config(self.integrations.sealer)
        store = SinkStore(self.projector_conninfo)
        breakers = self.breakers

        def guard(attempt: Callable[[], Any]) -> Any:
            if breakers is None:
                return attempt()
            return breakers.call(integration_id, attempt, failed=lambda _: False)

        return SinkRunner(
            integration_id=integration_id,
            owner=tenant_id,
            scope=sink_scope(tenant_id),
            source=self._sink_source(integration_id, kafka or self.kafka),
            sink=open_sink(config),
            enrich=RecordMaker(self.app.mapper, store.tenant_slug),
            dead_letters=store,
            settings=SinkSettings.of(config),
            guard=guard,
        )

    def _webhook_fleet_worker(self) -> Worker:
        fleet = SinkFleet(
            WebhookStore(self.projector_conninfo),
            lambda: self.supervisor,
            self._webhook_worker,
            name=WEBHOOKS,
        )
        return Worker(WEBHOOKS, fleet.run, fleet.close)

    def _webhook_worker(self, tenant_id: UUID, webhook_id: UUID) -> Worker:
        runner = self.webhook_runner(tenant_id, webhook_id)
        return Worker(runner.name, runner.run, runner.close)

    def webhook_runner(
        self,
        tenant_id: UUID,
        webhook_id: UUID,
        *,
        settings: SinkSettings | None = None,
        disable_after: int | None = None,
    ) -> SinkRunner:
        """The runner of one webhook: a sink runner (its own follower of the log, retries with
        backoff, dead letters) over the webhook's sink, fed only the events it subscribed to."""
        commands, guard = self.webhooks, self.webhook_guard
        assert commands is not None
        assert guard is not None
        webhook = commands.load(tenant_id, webhook_id)
        store = WebhookStore(self.projector_conninfo)
        own = self.settings

        def disable(failures: int, reason: str) -> None:
            commands.disable_after_failures(tenant_id, webhook_id, failures, reason)

        sink = WebhookSink(
            webhook_id=webhook_id,
            owner=tenant_id,
            url=webhook.webhook_url,
            events=list(webhook.events),
            secret=webhook.clear_secret(commands.sealer),
            sender=WebhookSender(
                guard, own.constitutional_hash, timeout_seconds=own.webhook_timeout_seconds
            ),
            delivery_log=store,
            constitutional_hash=own.constitutional_hash,
            disable_after=disable_after or own.webhook_disable_after_failures,
            on_disable=disable,
        )
        return SinkRunner(
            integration_id=webhook_id,
            owner=tenant_id,
            scope=sink_scope(tenant_id),
            source=LogFollower(
                self.projector_conninfo, follower_name(webhook_id), synchronous_commit=False
            ),
            sink=sink,
            enrich=SubscribedRecords(
                subscribed_types(list(webhook.events)),
                RecordMaker(self.app.mapper, store.tenant_slug),
            ),
            dead_letters=store,
            settings=settings
            or SinkSettings(
                max_count=100,
                max_wait=0.0,
                max_attempts=own.webhook_max_attempts,
                retry_initial=own.webhook_retry_initial_ms / 1000,
            ),
        )

    def _sink_source(self, integration_id: UUID, kafka: Any) -> Any:
        """Where a sink reads events: the notification log, or a Kafka consumer group of its own
        (infra.kafka.sink_source) when streaming is on."""
        positions = LogFollower(
            self.projector_conninfo, follower_name(integration_id), synchronous_commit=False
        )
        if kafka is None:
            return positions
        from confluent_kafka.schema_registry import SchemaRegistryClient  # noqa: PLC0415

        from infra.kafka.codec import EventCodec  # noqa: PLC0415 - optional extra
        from infra.kafka.sink_source import KafkaSinkSource, sink_group  # noqa: PLC0415

        return KafkaSinkSource(
            kafka,
            EventCodec(SchemaRegistryClient(kafka.registry_conf())),
            self.app.mapper,
            positions,
            group_id=sink_group(integration_id),
        )

    def gap_analysis_kind(self) -> GapAnalysisKind:
        """The `gap_analysis` job kind, over the registry and the gap tables as the application
        role (row-level security holds for it as for the API); the critical gaps a run opens go
        to the audit log (and so to the sinks' alerts)."""
        assert self.gaps is not None
        return GapAnalysisKind(PostgresGapLedger(self.app_conninfo), self.gaps)

    def health_checker(self) -> IntegrationHealthChecker:
        assert self.integrations is not None
        return IntegrationHealthChecker(
            self.integrations,
            IntegrationHealthLedger(self.projector_conninfo),
            interval_seconds=self.settings.integration_health_interval_seconds,
        )

    def _registry_workers(self) -> list[str]:
        """The decision-log writer and the policy cache's follower, when the registry is built."""
        return [DECISION_LOG, POLICY_CACHE] if self.decision_log is not None else []

    def worker_status(self) -> list[WorkerStatus]:
        """The supervised workers' states (none before `start_workers`)."""
        return self.supervisor.status() if self.supervisor is not None else []

    def ensure_audit_partitions(self) -> int:
        """Create the audit log's monthly partitions from last month to three months ahead."""
        with psycopg.connect(self.projector_conninfo, autocommit=True) as conn:
            row = conn.execute("SELECT ensure_audit_partitions(1, 3)").fetchone()
        return int(row[0]) if row else 0

    def ensure_decision_log_partitions(self) -> int:
        """Create the decision log's monthly partitions from last month to three months ahead."""
        with psycopg.connect(self.projector_conninfo, autocommit=True) as conn:
            row = conn.execute("SELECT ensure_decision_log_partitions(1, 3)").fetchone()
        return int(row[0]) if row else 0

    def export_runner(self) -> ExportRunner:
        return ExportRunner(
            self.projector_conninfo, expire_seconds=self.settings.audit_export_ttl_seconds
        )

    def retention_runner(self, **options: Any) -> RetentionRunner:
        assert self.audit is not None
        return RetentionRunner(self.projector_conninfo, self.audit.record_purge, **options)

    def _maintain_partitions(self, stop: threading.Event) -> None:
        """The partition-maintenance worker: check at start and every six hours (a failure is
        the supervisor's to restart with backoff)."""
        self.ensure_audit_partitions()
        self.ensure_decision_log_partitions()
        while not stop.wait(PARTITION_CHECK_SECONDS):
            self.ensure_audit_partitions()
            self.ensure_decision_log_partitions()

    def projection_status(self, *, own_only: bool = False) -> list[dict[str, Any]]:
        """Every follower of the log that has a position, with its lag and whether this
        deployment runs it (`enabled`): a follower it does not run (a relay while streaming is
        off, a retired projection) is shown as disabled, and its lag counts for nothing.
        `own_only` leaves the disabled ones out."""
        with psycopg.connect(self.projector_conninfo, autocommit=True) as conn:
            status = follower_status(conn)
        own = set(self.followers()) | {
            w.name for w in self.worker_status() if w.name.startswith(SINK_PREFIX)
        }
        for row in status:
            row["enabled"] = row["name"] in own
        return [s for s in status if s["enabled"]] if own_only else status

    # --- stopping -----------------------------------------------------------------------------

    def close(self) -> None:
        """Stop the workers, then release everything (the one stop path; safe to call twice)."""
        if self._closed:
            return
        self._closed = True
        if self.supervisor is not None:
            self.supervisor.stop()
        for runner in self.runners:
            runner.close()
        held = (
            self.relay,
            self.data_keys,
            self.policies,
            self.decision_log,
            self.policy_cache,
            self.sinks,
            self.shadow_metrics,
            self.webhooks,
        )
        for part in held:  # in this order; each absent when its feature is not built
            if part is not None:
                part.close()
        self.app.close()
        if self.embedded is not None:
            self.embedded.stop()


def build(settings: Settings, *, apply_migrations: bool | None = None) -> System:
    """Connect (starting the embedded server when configured), migrate, and wire everything.

    Migrations run by default in the embedded profile; in production `acgs db migrate` runs them.
    """
    tracing.configure(
        exporter=settings.trace_exporter,
        endpoint=settings.trace_endpoint,
        sample_ratio=settings.trace_sample_ratio,
        critical_ratio=settings.trace_critical_ratio,
    )
    admin_url, embedded = open_database(settings)
    try:
        if apply_migrations if apply_migrations is not None else embedded is not None:
            migrate(admin_url)
        app = GovernanceApplication(env=event_store_env(admin_url, settings))
        data_keys = PostgresDataKeys(role_conninfo(admin_url, APP_ROLE, settings.app_db_password))
        sealer = EnvelopeSealer(key_provider(settings), data_keys)
        tenants = TenantCommands(app, settings.constitutional_hash, tenant_keys=sealer)
        tenants.bootstrap_system_tenant()
        breakers = CircuitBreakers(
            failure_threshold=settings.breaker_failure_threshold,
            reset_seconds=settings.breaker_reset_seconds,
        )
        system = System(
            settings=settings,
            admin_url=admin_url,
            embedded=embedded,
            app=app,
            tenants=tenants,
            audit=AuditCommands(app, settings.constitutional_hash),
            database=Database(
                role_conninfo(admin_url, APP_ROLE, settings.app_db_password), settings.pool_size
            ),
            sealer=sealer,
            breakers=breakers,
            data_keys=data_keys,
        )
        system.integrations = IntegrationCommands(
            app,
            settings.constitutional_hash,
            sealer,
            ConnectivityProbe(breakers, constitutional_hash=settings.constitutional_hash),
            IntegrationHealthLedger(system.projector_conninfo),
            production=settings.profile == "production",
        )
        system.sinks = SinkCommands(
            app,
            settings.constitutional_hash,
            system.integrations,
            SinkStore(system.projector_conninfo),
            open_sink,
            lambda name: asdict(SINK_STATS[name]) if name in SINK_STATS else {},
        )
        system.role_mappings = RoleMappingCommands(app, settings.constitutional_hash)
        system.gaps = GapCommands(app, settings.constitutional_hash)
        build_webhooks(system)
        system.role_cache = RoleMappingCache(system.database)
        system.runners = [
            ProjectionRunner(system.projector_conninfo, p, app.mapper) for p in all_projections()
        ]
        build_registry(system)
        if settings.kafka_bootstrap_servers:
            system.kafka = kafka_config(settings)
            system.relay = build_relay(system, system.kafka)
    except BaseException:
        if embedded is not None:
            embedded.stop()
        raise
    return system


def build_webhooks(system: System) -> None:
    """The webhooks' commands, with the one SSRF guard every delivery goes through."""
    settings = system.settings
    assert system.sealer is not None
    guard = TargetGuard(AllowList.parse(settings.webhook_allowed_targets))
    system.webhook_guard = guard
    system.webhooks = WebhookCommands(
        system.app,
        settings.constitutional_hash,
        system.sealer,
        guard,
        WebhookSender(
            guard, settings.constitutional_hash, timeout_seconds=settings.webhook_timeout_seconds
        ),
        WebhookStore(system.projector_conninfo),
    )


def build_registry(system: System) -> None:
    """The policy registry, the decision service, its decision log and its cache's follower."""
    settings = system.settings
    system.policies = PolicyCommands(system.app, settings.constitutional_hash, BoundedRegoEngine())
    engines = EngineCache()
    cache = RegistryCache(system.app)
    system.decision_log = DecisionRecorder(
        PostgresDecisionLogStore(system.projector_conninfo), system.app
    )
    system.decisions = DecisionService(
        cache, engines, system.decision_log, settings.constitutional_hash
    )
    system.policy_cache = RegistryCacheFollower(system.projector_conninfo, cache, engines)
    system.shadow_metrics = ShadowMetricsStore(system.app_conninfo)
    system.shadow = ShadowService(
        system.app, system.decisions, system.shadow_metrics, settings.constitutional_hash
    )
    build_migrations(system)


def shadow_replay_kind(system: System) -> ShadowReplayKind:
    """The `shadow_mode` job kind, for the migration-job runner."""
    if system.shadow is None:
        raise RuntimeError("shadow mode is not built")
    return ShadowReplayKind(
        system.shadow, PostgresImportedDecisions(system.app_conninfo), ReplayProgress
    )


def job_kinds(system: System) -> dict[str, JobKind]:
    """The kinds of migration job this deployment runs, by name (one line per kind)."""
    settings = system.settings
    limits = DEFAULT_LIMITS
    engine = partial(
        BoundedRegoEngine,
        seconds=limits.evaluation_seconds,
        memory_bytes=limits.evaluation_memory_bytes,
    )
    processes = settings.migration_conversion_processes or os.cpu_count() or 1
    kinds: list[JobKind] = [
        PolicyConversionKind(
            system.app, settings.constitutional_hash, engine, processes=processes, limits=limits
        ),
        DecisionImportKind(
            lambda: PostgresDecisionImportStore(system.projector_conninfo),
            PostgresQuerySource,
            settings.constitutional_hash,
        ),
        shadow_replay_kind(system),
    ]
    if system.gaps is not None:
        kinds.append(system.gap_analysis_kind())
    return {kind.name: kind for kind in kinds}


def build_migrations(system: System) -> None:
    """Migration jobs: their commands, their sources, and the kinds the runner can run."""
    settings = system.settings
    sources = JobSources(
        upload_root=settings.data_dir / "migrations" / "uploads",
        allowed_dirs=settings.migration_source_dirs,
        upload_limit=settings.migration_upload_max_bytes,
        unpacked_limit=10 * settings.migration_upload_max_bytes,
    )
    system.migrations = MigrationJobs(
        system.app, settings.constitutional_hash, job_kinds(system), sources, system.sealer
    )


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
    from projections.audit_log import audit_record_of  # noqa: PLC0415

    codec = EventCodec(SchemaRegistryClient(config.registry_conf()))
    return KafkaRelay(
        system.projector_conninfo,
        system.app.mapper,
        codec,
        config,
        audit_record=audit_record_of,
        name=name,
    )


def external_events_worker(system: System) -> Worker:
    """The worker that consumes the external-events topic (api.streaming.external_events)."""
    from confluent_kafka.schema_registry import SchemaRegistryClient  # noqa: PLC0415

    from api.streaming.external_events import ExternalEventsConsumer  # noqa: PLC0415
    from infra.kafka.consumer import ConsumerWorker  # noqa: PLC0415 - optional extra

    config = system.kafka
    registry = SchemaRegistryClient(config.registry_conf())
    consumer = ExternalEventsConsumer(
        app=system.app,
        constitutional_hash=system.settings.constitutional_hash,
        registry=registry,
        topic=config.topics.external_events,
        conninfo=system.projector_conninfo,
        config=config,
    )
    runner = ConsumerWorker([consumer], config, client_id=f"acgs-{EXTERNAL_EVENTS}")

    def close() -> None:
        runner.close()
        registry.close()

    return Worker(EXTERNAL_EVENTS, runner.run, close)
