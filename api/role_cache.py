"""The role-mapping cache of sign-in: (tenant, integration, source type) → its mappings, read
from the `tenant_role_mappings` read model and kept for 5 minutes, and its listener, a
supervised worker that LISTENs for the role-mapping projection's notifications (sent in the
transaction that changed the read model, so delivered once the change is visible to every
process) and drops the tenant's entries at once."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from uuid import UUID

import psycopg

from domain.identity import GroupMapping
from domain.maci import MaciRole
from infra.postgres.database import Database
from projections.role_mappings import ROLE_MAPPINGS_CHANGED

ROLE_CACHE = "role_cache"  # the listener's worker name
ROLE_CACHE_SECONDS = 300.0


class RoleMappingCache:
    """(tenant, integration, source type) → its role mappings, for `ttl_seconds`."""

    def __init__(
        self,
        database: Database,
        *,
        ttl_seconds: float = ROLE_CACHE_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._db = database
        self.ttl_seconds = ttl_seconds
        self._clock = clock
        self._entries: dict[tuple[UUID, UUID, str], tuple[float, list[GroupMapping]]] = {}
        self.loads = 0

    async def mappings(
        self, tenant_id: UUID, integration_id: UUID, source_type: str = "ldap_group"
    ) -> list[GroupMapping]:
        key = (tenant_id, integration_id, source_type)
        cached = self._entries.get(key)
        if cached is not None and self._clock() - cached[0] < self.ttl_seconds:
            return cached[1]
        loaded_at = self._clock()
        async with self._db.tenant_session(tenant_id) as conn:
            cur = await conn.execute(
                "SELECT mapping_id, integration_id, source_value, maci_role, priority "
                "FROM tenant_role_mappings WHERE integration_id = %s "
                "AND source_type = %s",
                [integration_id, source_type],
            )
            rows = await cur.fetchall()
        mappings = [
            GroupMapping(
                r["mapping_id"],
                r["integration_id"],
                r["source_value"],
                MaciRole(r["maci_role"]),
                r["priority"],
            )
            for r in rows
        ]
        self.loads += 1
        self._entries[key] = (loaded_at, mappings)
        return mappings

    def invalidate(self, tenant_id: UUID | None = None) -> None:
        """Drop the tenant's entries (every entry with None)."""
        for key in list(self._entries):
            if tenant_id is None or key[0] == tenant_id:
                self._entries.pop(key, None)


class RoleMappingListener:
    """A supervised worker: LISTENs for the role-mapping projection's notifications (sent in
    the transaction that changed the read model, so delivered once the change is visible) and
    invalidates the cache of the tenant named."""

    def __init__(self, conninfo: str, cache: RoleMappingCache) -> None:
        self._conninfo = conninfo
        self._cache = cache

    def run(self, stop: threading.Event) -> None:
        with psycopg.connect(self._conninfo, autocommit=True) as conn:
            conn.execute(f"LISTEN {ROLE_MAPPINGS_CHANGED}")
            self._cache.invalidate()  # anything cached before listening may be stale
            while not stop.is_set():
                for notice in conn.notifies(timeout=0.5, stop_after=100):
                    try:
                        self._cache.invalidate(UUID(notice.payload))
                    except ValueError:
                        self._cache.invalidate()
