"""The one settings object, read from `ACGS_*` environment variables and validated at start."""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from pathlib import Path

from domain.constitution import CONSTITUTIONAL_HASH_PATTERN, DEFAULT_CONSTITUTIONAL_HASH
from domain.webhooks.targets import AllowList

TRACE_EXPORTERS = ("none", "console", "otlp-grpc", "otlp-http", "zipkin")


class SettingsError(ValueError):
    """A setting has a value the service cannot use; the message names the variable."""


@dataclass(frozen=True)
class Settings:
    data_dir: Path
    database_url: str | None  # None: the embedded profile starts its own PostgreSQL
    http_host: str
    http_port: int
    constitutional_hash: str
    app_db_password: str | None
    projector_db_password: str | None
    pool_size: int
    log_level: str
    kafka_bootstrap_servers: str | None
    schema_registry_url: str | None
    # Streaming: credentials and tuning; streaming is on when the servers are set.
    kafka_security_protocol: str | None = None
    kafka_sasl_mechanism: str | None = None
    kafka_sasl_username: str | None = None
    kafka_sasl_password: str | None = field(default=None, repr=False)
    schema_registry_basic_auth: str | None = field(default=None, repr=False)
    kafka_relay_batch_size: int = 2000
    kafka_linger_ms: int = 5
    kafka_session_timeout_ms: int = 10000
    kafka_local: bool = False  # start a local broker and registry (development only)
    # Integrations: the key provider (Vault/OpenBao transit when vault_addr is set, else a local
    # key file under the data directory), the health checker and the circuit breakers.
    vault_addr: str | None = None
    vault_token: str | None = field(default=None, repr=False)
    vault_role_id: str | None = None
    vault_secret_id: str | None = field(default=None, repr=False)
    vault_transit_mount: str = "transit"
    vault_ca_cert: str | None = None
    integration_health_interval_seconds: int = 60
    breaker_failure_threshold: int = 5
    breaker_reset_seconds: int = 30
    break_glass_file: Path | None = None  # local accounts for a directory outage (off when unset)
    # Quotas shared by every API process (off: each process counts its own).
    redis_url: str | None = field(default=None, repr=False)  # may hold a password
    redis_on_failure: str = "open"  # Redis unreachable: admit (open) or refuse with 503 (closed)

    def with_integrations(self, env: dict[str, str]) -> Settings:
        return replace(self, **_integration_settings(env))  # type: ignore[arg-type]

    # The audit log (docs/audit.md).
    audit_query_max_days: int = 366  # the widest start_time..end_time span of a query or export
    audit_export_ttl_seconds: int = 86400  # how long an export's file can be downloaded
    audit_lag_events: int = 1000  # /readyz is degraded when the audit log is further behind
    # Tracing (docs/tracing.md): exporter none|console|otlp-grpc|otlp-http|zipkin.
    trace_exporter: str = "none"
    trace_endpoint: str | None = None
    trace_sample_ratio: float = 0.01  # requests outside the critical paths
    trace_critical_ratio: float = 1.0  # authentication, tenant lifecycle, hash failures, policies
    # Migration jobs (docs/migration-playbook.md).
    migration_source_dirs: tuple[Path, ...] = ()  # server-side job sources must lie inside these
    migration_upload_max_bytes: int = 100 * 1024 * 1024  # one uploaded file or archive
    migration_lease_seconds: int = 30  # a worker's hold on a job, renewed while it works
    migration_progress_seconds: int = 1  # at most one progress checkpoint per this many seconds
    migration_tenant_concurrency: int = 2  # running jobs per tenant, at most
    migration_conversion_processes: int = 0  # processes converting policies; 0: every core
    # Webhooks (docs/webhooks.md): targets the SSRF guard lets through although they are
    # loopback, private ... (CIDRs or host names), and how deliveries retry and give up.
    webhook_allowed_targets: tuple[str, ...] = ()
    webhook_disable_after_failures: int = 10
    webhook_max_attempts: int = 8
    webhook_retry_initial_ms: int = 500
    webhook_timeout_seconds: int = 10

    def with_webhooks(self, env: dict[str, str]) -> Settings:
        return replace(self, **_webhook_settings(env))  # type: ignore[arg-type]

    @property
    def profile(self) -> str:
        return "embedded" if self.database_url is None else "production"

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> Settings:
        e = dict(os.environ if env is None else env)
        constitutional_hash = e.get("CONSTITUTIONAL_HASH") or e.get(
            "ACGS_CONSTITUTIONAL_HASH", DEFAULT_CONSTITUTIONAL_HASH
        )
        if not CONSTITUTIONAL_HASH_PATTERN.fullmatch(constitutional_hash):
            msg = "CONSTITUTIONAL_HASH must be 16 lowercase hexadecimal characters"
            raise SettingsError(msg)
        return (
            cls(
                data_dir=Path(e.get("ACGS_DATA_DIR", ".acgs")).resolve(),
                database_url=e.get("ACGS_DATABASE_URL") or None,
                http_host=e.get("ACGS_HTTP_HOST", "127.0.0.1"),
                http_port=_int(e, "ACGS_HTTP_PORT", 8000, 1, 65535),
                constitutional_hash=constitutional_hash,
                app_db_password=e.get("ACGS_APP_DB_PASSWORD") or None,
                projector_db_password=e.get("ACGS_PROJECTOR_DB_PASSWORD") or None,
                pool_size=_int(e, "ACGS_DB_POOL_SIZE", 10, 1, 500),
                log_level=e.get("ACGS_LOG_LEVEL", "INFO").upper(),
                kafka_bootstrap_servers=e.get("ACGS_KAFKA_BOOTSTRAP_SERVERS") or None,
                schema_registry_url=e.get("ACGS_SCHEMA_REGISTRY_URL") or None,
                kafka_security_protocol=e.get("ACGS_KAFKA_SECURITY_PROTOCOL") or None,
                kafka_sasl_mechanism=e.get("ACGS_KAFKA_SASL_MECHANISM") or None,
                kafka_sasl_username=e.get("ACGS_KAFKA_SASL_USERNAME") or None,
                kafka_sasl_password=e.get("ACGS_KAFKA_SASL_PASSWORD") or None,
                schema_registry_basic_auth=e.get("ACGS_SCHEMA_REGISTRY_BASIC_AUTH") or None,
                kafka_relay_batch_size=_int(e, "ACGS_KAFKA_RELAY_BATCH_SIZE", 2000, 1, 100_000),
                kafka_linger_ms=_int(e, "ACGS_KAFKA_LINGER_MS", 5, 0, 60_000),
                kafka_session_timeout_ms=_int(
                    e, "ACGS_KAFKA_SESSION_TIMEOUT_MS", 10000, 1000, 300_000
                ),
                kafka_local=e.get("ACGS_KAFKA_LOCAL", "").lower() in ("1", "true", "yes"),
                audit_query_max_days=_int(e, "ACGS_AUDIT_QUERY_MAX_DAYS", 366, 1, 36500),
                audit_export_ttl_seconds=_int(
                    e, "ACGS_AUDIT_EXPORT_TTL_SECONDS", 86400, 60, 31_536_000
                ),
                audit_lag_events=_int(e, "ACGS_AUDIT_LAG_EVENTS", 1000, 1, 10_000_000),
                trace_exporter=_choice(e, "ACGS_TRACE_EXPORTER", "none", TRACE_EXPORTERS),
                trace_endpoint=e.get("ACGS_TRACE_ENDPOINT") or None,
                trace_sample_ratio=_ratio(e, "ACGS_TRACE_SAMPLE_RATIO", 0.01),
                trace_critical_ratio=_ratio(e, "ACGS_TRACE_CRITICAL_RATIO", 1.0),
                redis_url=_redis_url(e),
                redis_on_failure=_choice(e, "ACGS_REDIS_ON_FAILURE", "open", ("open", "closed")),
                migration_source_dirs=_directories(e, "ACGS_MIGRATION_SOURCE_DIRS"),
                migration_upload_max_bytes=_int(
                    e, "ACGS_MIGRATION_UPLOAD_MAX_BYTES", 100 * 1024 * 1024, 1024, 2**40
                ),
                migration_lease_seconds=_int(e, "ACGS_MIGRATION_LEASE_SECONDS", 30, 1, 3600),
                migration_progress_seconds=_int(e, "ACGS_MIGRATION_PROGRESS_SECONDS", 1, 1, 86400),
                migration_tenant_concurrency=_int(
                    e, "ACGS_MIGRATION_TENANT_CONCURRENCY", 2, 1, 1000
                ),
                migration_conversion_processes=_int(
                    e, "ACGS_MIGRATION_CONVERSION_PROCESSES", 0, 0, 1024
                ),
            )
            .with_integrations(e)
            .with_webhooks(e)
        )


def _redis_url(env: dict[str, str]) -> str | None:
    url = env.get("ACGS_REDIS_URL") or None
    if url is not None and not url.startswith(("redis://", "rediss://", "unix://")):
        scheme = url.partition("://")[0] if "://" in url else "no scheme"
        msg = f"ACGS_REDIS_URL must be a redis://, rediss:// or unix:// URL, got {scheme}"
        raise SettingsError(msg)  # never the URL itself: it may hold a password
    return url


def _int(env: dict[str, str], name: str, default: int, low: int, high: int) -> int:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        msg = f"{name} must be an integer, got {raw!r}"
        raise SettingsError(msg) from None
    if not low <= value <= high:
        msg = f"{name} must be between {low} and {high}, got {value}"
        raise SettingsError(msg)
    return value


def _integration_settings(env: dict[str, str]) -> dict[str, object]:
    addr = env.get("ACGS_VAULT_ADDR") or None
    token = env.get("ACGS_VAULT_TOKEN") or None
    role_id = env.get("ACGS_VAULT_ROLE_ID") or None
    secret_id = env.get("ACGS_VAULT_SECRET_ID") or None
    if addr is not None:
        if not addr.startswith(("http://", "https://")):
            msg = f"ACGS_VAULT_ADDR must be an http:// or https:// URL, got {addr!r}"
            raise SettingsError(msg)
        if token is None and not (role_id and secret_id):
            msg = (
                "ACGS_VAULT_ADDR needs ACGS_VAULT_TOKEN, or ACGS_VAULT_ROLE_ID and "
                "ACGS_VAULT_SECRET_ID (AppRole)"
            )
            raise SettingsError(msg)
    return {
        "vault_addr": addr,
        "vault_token": token,
        "vault_role_id": role_id,
        "vault_secret_id": secret_id,
        "vault_transit_mount": env.get("ACGS_VAULT_TRANSIT_MOUNT") or "transit",
        "vault_ca_cert": env.get("ACGS_VAULT_CACERT") or None,
        "integration_health_interval_seconds": _int(
            env, "ACGS_INTEGRATION_HEALTH_INTERVAL_SECONDS", 60, 1, 86_400
        ),
        "breaker_failure_threshold": _int(env, "ACGS_BREAKER_FAILURE_THRESHOLD", 5, 1, 1000),
        "breaker_reset_seconds": _int(env, "ACGS_BREAKER_RESET_SECONDS", 30, 1, 86_400),
        "break_glass_file": Path(env["ACGS_BREAK_GLASS_FILE"])
        if env.get("ACGS_BREAK_GLASS_FILE")
        else None,
    }


def _directories(env: dict[str, str], name: str) -> tuple[Path, ...]:
    """Absolute directories, separated by the path separator (":" on POSIX)."""
    raw = env.get(name) or ""
    found = tuple(Path(part) for part in raw.split(os.pathsep) if part)
    relative = [str(path) for path in found if not path.is_absolute()]
    if relative:
        msg = f"{name} must hold absolute directories, got {', '.join(relative)}"
        raise SettingsError(msg)
    return found


def _choice(env: dict[str, str], name: str, default: str, allowed: tuple[str, ...]) -> str:
    value = (env.get(name) or default).lower()
    if value not in allowed:
        msg = f"{name} must be one of {', '.join(allowed)}, got {value!r}"
        raise SettingsError(msg)
    return value


def _ratio(env: dict[str, str], name: str, default: float) -> float:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        msg = f"{name} must be a number between 0 and 1, got {raw!r}"
        raise SettingsError(msg) from None
    if not 0.0 <= value <= 1.0:
        msg = f"{name} must be between 0 and 1, got {value}"
        raise SettingsError(msg)
    return value


def _webhook_settings(env: dict[str, str]) -> dict[str, object]:
    raw = env.get("ACGS_WEBHOOK_ALLOWED_TARGETS") or ""
    allowed = tuple(t.strip() for t in raw.split(",") if t.strip())
    try:
        AllowList.parse(allowed)
    except ValueError as exc:
        msg = f"ACGS_WEBHOOK_ALLOWED_TARGETS: {exc}"
        raise SettingsError(msg) from None
    return {
        "webhook_allowed_targets": allowed,
        "webhook_disable_after_failures": _int(
            env, "ACGS_WEBHOOK_DISABLE_AFTER_FAILURES", 10, 1, 10_000
        ),
        "webhook_max_attempts": _int(env, "ACGS_WEBHOOK_MAX_ATTEMPTS", 8, 1, 100),
        "webhook_retry_initial_ms": _int(env, "ACGS_WEBHOOK_RETRY_INITIAL_MS", 500, 1, 600_000),
        "webhook_timeout_seconds": _int(env, "ACGS_WEBHOOK_TIMEOUT_SECONDS", 10, 1, 300),
    }
