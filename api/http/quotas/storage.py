"""Storage usage per tenant, measured in the database and cached briefly (it sums row sizes)."""

from __future__ import annotations

import time
from collections.abc import Callable
from uuid import UUID

from infra.postgres.database import Database
from projections.usage import storage_bytes

BYTES_PER_GB = 1024**3
CACHE_SECONDS = 10.0


class StorageMeter:
    def __init__(
        self,
        database: Database,
        *,
        ttl_seconds: float = CACHE_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._database = database
        self._ttl = ttl_seconds
        self._clock = clock
        self._cache: dict[UUID, tuple[float, int]] = {}

    async def bytes_used(self, tenant_id: UUID) -> int:
        cached = self._cache.get(tenant_id)
        if cached is not None and cached[0] > self._clock():
            return cached[1]
        async with self._database.tenant_session(tenant_id) as conn:
            used = await storage_bytes(conn)
        self._cache[tenant_id] = (self._clock() + self._ttl, used)
        return used

    async def exceeds(self, tenant_id: UUID, quota_gb: int) -> bool:
        return await self.bytes_used(tenant_id) >= quota_gb * BYTES_PER_GB
