"""The one settings object, read from `ACGS_*` environment variables and validated at start."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from domain.constitution import CONSTITUTIONAL_HASH_PATTERN, DEFAULT_CONSTITUTIONAL_HASH


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
        return cls(
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
        )


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
