"""A throwaway PostgreSQL for the test session, started with the project's own embedded-server
code (Debian's binaries as root, else pgserver), migrated, and stopped by PID at the end."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
import pytest

from api.bootstrap import System, build
from api.settings import Settings
from infra.postgres.embedded import EmbeddedPostgres
from infra.postgres.migrate import migrate
from tests.peers.scratch import scratch_dir


@contextmanager
def throwaway_postgres(data_dir: Path) -> Iterator[tuple[EmbeddedPostgres, str]]:
    """A fresh, migrated cluster in `data_dir / "pg"` and its superuser connection string;
    stopped afterwards. Used by the session fixture and the benchmarks."""
    server = EmbeddedPostgres(data_dir)
    try:
        url = server.start()
        migrate(url)
        yield server, url
    finally:
        server.stop()


@pytest.fixture(scope="session")
def pg_admin_url() -> Iterator[str]:
    """The superuser connection string of a fresh, migrated database."""
    with scratch_dir("acgs-test-pg-") as data_dir, throwaway_postgres(data_dir) as (_, url):
        yield url


@pytest.fixture(scope="session")
def settings(pg_admin_url: str, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return Settings.from_env(
        {"ACGS_DATABASE_URL": pg_admin_url, "ACGS_DATA_DIR": str(tmp_path_factory.mktemp("data"))}
    )


@pytest.fixture(scope="session")
def system(settings: Settings) -> Iterator[System]:
    """The wired system on the test database (projection runners not started: tests drive them)."""
    built = build(settings, apply_migrations=True)
    yield built
    built.close()


@pytest.fixture
def admin_conn(pg_admin_url: str) -> Iterator[psycopg.Connection[tuple[object, ...]]]:
    with psycopg.connect(pg_admin_url, autocommit=True) as conn:
        yield conn


@pytest.fixture
def unique() -> str:
    """A short unique suffix for slugs and names, so tests sharing the database never collide."""
    return uuid.uuid4().hex[:10]
