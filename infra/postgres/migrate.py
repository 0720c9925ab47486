"""Versioned SQL migrations: each applied once, in one transaction, recorded with a checksum."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from importlib import resources

import psycopg

_LEDGER = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    version     VARCHAR(20) PRIMARY KEY,
    name        VARCHAR(200) NOT NULL,
    checksum    CHAR(64) NOT NULL,
    applied_at  TIMESTAMPTZ NOT NULL DEFAULT NOW()
)
"""
# Serialises concurrent `acgs db migrate` runs against one database.
_ADVISORY_LOCK_KEY = 0x4AC652


class MigrationError(RuntimeError):
    """A migration failed, or an applied migration's file has changed since."""


@dataclass(frozen=True)
class Migration:
    version: str
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()


def available_migrations() -> list[Migration]:
    folder = resources.files("infra.postgres") / "migrations"
    found = []
    for entry in folder.iterdir():
        if entry.name.endswith(".sql"):
            version, _, rest = entry.name.partition("_")
            found.append(Migration(version, rest.removesuffix(".sql"), entry.read_text()))
    return sorted(found, key=lambda m: m.version)


def migrate(database_url: str) -> list[Migration]:
    """Apply every pending migration; return those applied now (empty when up to date)."""
    applied_now: list[Migration] = []
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(_LEDGER)
        conn.execute("SELECT pg_advisory_lock(%s)", [_ADVISORY_LOCK_KEY])
        try:
            done = {
                row[0]: row[1]
                for row in conn.execute("SELECT version, checksum FROM schema_migrations")
            }
            for migration in available_migrations():
                if migration.version in done:
                    if done[migration.version] != migration.checksum:
                        msg = (
                            f"migration {migration.version}_{migration.name} was changed after "
                            "it was applied; add a new migration instead"
                        )
                        raise MigrationError(msg)
                    continue
                try:
                    with conn.transaction():
                        conn.execute(migration.sql.encode())
                        conn.execute(
                            "INSERT INTO schema_migrations (version, name, checksum) "
                            "VALUES (%s, %s, %s)",
                            [migration.version, migration.name, migration.checksum],
                        )
                except psycopg.Error as exc:
                    msg = f"migration {migration.version}_{migration.name} failed: {exc}"
                    raise MigrationError(msg) from exc
                applied_now.append(migration)
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", [_ADVISORY_LOCK_KEY])
    return applied_now
