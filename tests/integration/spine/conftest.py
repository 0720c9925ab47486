"""Helpers for the spine's integration tests: principals, contexts and tenant-scoped SQL."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import contextmanager
from typing import Any
from uuid import UUID

import psycopg
import pytest

from api.bootstrap import System
from commands.tenants import CreateTenant
from domain.tenant.aggregate import Tenant
from infra.postgres.database import Database
from tests.integration.spine.support import PLATFORM


@pytest.fixture
async def database(system: System) -> AsyncIterator[Database]:
    """An API process's connection pool (the app role, under Row-Level Security)."""
    db = Database(system.app_conninfo, pool_size=2)
    await db.open()
    try:
        yield db
    finally:
        await db.close()


@pytest.fixture
def create_tenant(system: System, unique: str) -> Callable[..., Tenant]:
    counter = iter(range(1000))

    def create(**overrides: Any) -> Tenant:
        n = next(counter)
        values: dict[str, Any] = {
            "tenant_name": f"Tenant {unique} {n}",
            "tenant_slug": f"t-{unique}-{n}",
            "admin_email": f"admin{n}@example.com",
        }
        values.update(overrides)
        return system.tenants.create(PLATFORM, CreateTenant(**values))

    return create


@pytest.fixture
def as_tenant(system: System) -> Callable[[UUID | None], Any]:
    """`with as_tenant(tid) as cur:` runs SQL as acgs2_app inside a tenant-scoped transaction."""

    @contextmanager
    def scoped(tenant_id: UUID | None) -> Iterator[psycopg.Cursor[Any]]:
        with psycopg.connect(system.app_conninfo) as conn, conn.transaction(), conn.cursor() as cur:
            cur.execute(
                "SELECT set_config('app.current_tenant_id', %s, true)",
                ["" if tenant_id is None else str(tenant_id)],
            )
            yield cur

    return scoped
