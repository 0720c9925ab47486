"""Sign-in's role-mapping cache on the real read model: kept 5 minutes (a clock the test moves),
dropped for one tenant by `invalidate`, and dropped by its listener when the projection
announces a change."""

from __future__ import annotations

import asyncio
import threading
from typing import Any
from uuid import UUID, uuid4

import psycopg
import pytest

from api.bootstrap import System
from api.role_cache import RoleMappingCache, RoleMappingListener
from infra.postgres.database import Database
from projections.role_mappings import ROLE_MAPPINGS_CHANGED

pytestmark = pytest.mark.postgres


class Clock:
    now = 100.0

    def __call__(self) -> float:
        return self.now


def _insert(admin: psycopg.Connection[Any], tenant: UUID, integration: UUID, role: str) -> None:
    admin.execute(
        "INSERT INTO tenant_role_mappings (tenant_id, integration_id, source_type, source_value, "
        "maci_role, priority) VALUES (%s, %s, 'ldap_group', %s, %s, 10)",
        [tenant, integration, f"cn={uuid4().hex},dc=x", role],
    )


async def test_mappings_are_kept_five_minutes_and_dropped_by_invalidate(
    database: Database, admin_conn: psycopg.Connection[Any]
) -> None:
    clock = Clock()
    cache = RoleMappingCache(database, clock=clock)
    tenant, other, integration = uuid4(), uuid4(), uuid4()
    assert await cache.mappings(tenant, integration) == []
    await cache.mappings(other, integration)
    _insert(admin_conn, tenant, integration, "AUDITOR")
    clock.now += 299.0
    assert await cache.mappings(tenant, integration) == []  # still the cached answer
    clock.now += 2.0
    [mapping] = await cache.mappings(tenant, integration)  # 5 minutes passed: read again
    assert mapping.role.value == "AUDITOR"
    await cache.mappings(other, integration)  # its entry expired too: fresh again
    _insert(admin_conn, tenant, integration, "EXECUTIVE")
    loads = cache.loads
    cache.invalidate(tenant)
    assert len(await cache.mappings(tenant, integration)) == 2
    assert cache.loads == loads + 1
    await cache.mappings(other, integration)
    assert cache.loads == loads + 1  # the other tenant's entry stayed


async def test_the_listener_drops_the_tenant_named_by_a_notification(
    database: Database, system: System, admin_conn: psycopg.Connection[Any]
) -> None:
    cache = RoleMappingCache(database)
    tenant, integration = uuid4(), uuid4()
    assert await cache.mappings(tenant, integration) == []
    stop = threading.Event()
    listener = threading.Thread(
        target=RoleMappingListener(system.app_conninfo, cache).run, args=(stop,), daemon=True
    )
    listener.start()
    try:
        _insert(admin_conn, tenant, integration, "JUDICIAL")

        async def loaded_after_notify() -> int:
            admin_conn.execute("SELECT pg_notify(%s, %s)", [ROLE_MAPPINGS_CHANGED, str(tenant)])
            return len(await cache.mappings(tenant, integration))

        heard = False
        for _ in range(250):  # the listener may still be starting: notify until it is heard
            if await loaded_after_notify() == 1:
                heard = True
                break
            await asyncio.sleep(0.02)
        assert heard, "the listener never dropped the cached mappings"
    finally:
        stop.set()
        listener.join(timeout=5)
