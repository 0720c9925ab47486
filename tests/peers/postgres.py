"""A throwaway PostgreSQL for the test session, started with the project's own embedded-server
code (Debian's binaries as root, else pgserver), migrated, and stopped by PID at the end."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from api.bootstrap import System, build
from api.settings import Settings
from infra.postgres.embedded import EmbeddedPostgres
from infra.postgres.migrate import migrate


@pytest.fixture(scope="session")
def pg_admin_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The superuser connection string of a fresh, migrated database."""
    server = EmbeddedPostgres(Path(tmp_path_factory.mktemp("pg")))
    url = server.start()
    migrate(url)
    yield url
    server.stop()


@pytest.fixture(scope="session")
def settings(pg_admin_url: str, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return Settings.from_env({"ACGS_DATABASE_URL": pg_admin_url,
                              "ACGS_DATA_DIR": str(tmp_path_factory.mktemp("data"))})


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
