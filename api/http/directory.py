"""The tenant rows the API needs on every request, cached briefly in the process.

Every `/v1` request needs its principal's tenant (active? which quotas?), and the tenant read
route returns a row of the `tenants` read model; both come from here. A row is read from the read
model (one round trip) and kept for `ttl_seconds` (2 s), so the hot paths cost no query; a row
in use is read again in the background once it is half that old, so a busy tenant's requests
never wait for the read model.

Freshness: a change made through this process is never hidden by the cache. Tenant commands
report the aggregate they saved (`remember`): its quotas and status apply to the next request
at once and go on applying until the read model shows that version (however long the projection
lags: a deactivated tenant's tokens never work again meanwhile), and a cached row older than
that version is refetched (and not kept) until the projection has caught up. Changes made by
other processes (another API worker, the CLI) show within the TTL plus the projection's lag.
Reads stay eventually consistent, never older than the read model was two seconds ago.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from domain.tenant.aggregate import Tenant
from domain.tenant.values import TenantStatus
from infra.postgres.database import Database
from projections.tenants import FIND_TENANT

CACHE_SECONDS = 2.0

Row = dict[str, Any]


@dataclass(frozen=True, slots=True)
class TenantLimits:
    status: str
    max_requests_per_minute: int
    max_storage_gb: int
    max_concurrent_connections: int

    @property
    def active(self) -> bool:
        return self.status == TenantStatus.ACTIVE.value


@dataclass(frozen=True, slots=True)
class _Written:
    """What this process last saved for a tenant (from the aggregate)."""

    version: int
    limits: TenantLimits | None  # None: purged
    until: float  # before this, answered without reading the read model


class TenantDirectory:
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
        self._rows: dict[UUID, tuple[float, Row | None]] = {}
        self._limits: dict[UUID, tuple[Row, TenantLimits]] = {}  # of the row they were made of
        self._written: dict[UUID, _Written] = {}
        self._pending: dict[UUID, asyncio.Future[Row | None]] = {}
        self._queries: set[asyncio.Task[None]] = set()

    async def limits(self, tenant_id: UUID) -> TenantLimits | None:
        """The tenant's status and quotas, or None if it does not exist (or was purged)."""
        written = self._written.get(tenant_id)
        if written is not None and written.until > self._clock():
            return written.limits
        row = await self.row(tenant_id)
        written = self._written.get(tenant_id)
        if written is not None:
            if not self._current(tenant_id, row):
                return written.limits  # the read model has not caught up with this write yet
            if self._written.get(tenant_id) is written:
                del self._written[tenant_id]
        if row is None:
            return None
        known = self._limits.get(tenant_id)
        if known is not None and known[0] is row:
            return known[1]  # the same cached row: its limits, made once
        limits = TenantLimits(
            status=row["status"],
            max_requests_per_minute=row["max_requests_per_minute"],
            max_storage_gb=row["max_storage_gb"],
            max_concurrent_connections=row["max_concurrent_connections"],
        )
        self._limits[tenant_id] = (row, limits)
        return limits

    async def row(self, tenant_id: UUID) -> Row | None:
        """The tenant's read-model row (cached up to the TTL; see the module docstring)."""
        cached = self._rows.get(tenant_id)
        now = self._clock()
        if cached is not None and cached[0] > now and self._current(tenant_id, cached[1]):
            if cached[0] - now < self._ttl / 2 and tenant_id not in self._pending:
                self._start_query(tenant_id)  # refreshed in the background; nobody waits
            return cached[1]
        pending = self._pending.get(tenant_id) or self._start_query(tenant_id)
        return await asyncio.shield(pending)  # one query per tenant at a time, however many wait

    def _start_query(self, tenant_id: UUID) -> asyncio.Future[Row | None]:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Row | None] = loop.create_future()
        self._pending[tenant_id] = future
        task = loop.create_task(self._query(tenant_id, future))
        self._queries.add(task)
        task.add_done_callback(self._queries.discard)
        return future

    async def _query(self, tenant_id: UUID, future: asyncio.Future[Row | None]) -> None:
        try:
            row = await self._database.fetch_one_as_tenant(tenant_id, FIND_TENANT, [tenant_id])
        except asyncio.CancelledError:
            future.cancel()
            raise
        except Exception as exc:  # noqa: BLE001 - handed to the waiters, if any
            future.set_exception(exc)
            future.exception()  # retrieved: the waiters re-raise it, nobody logs it as lost
            return
        finally:
            self._pending.pop(tenant_id, None)
        if self._current(tenant_id, row):
            self._rows[tenant_id] = (self._clock() + self._ttl, row)
        future.set_result(row)

    def remember(self, tenant: Tenant) -> None:
        """Record the state a command just saved (from the aggregate)."""
        limits = None
        if tenant.status is not TenantStatus.PURGED:
            limits = TenantLimits(tenant.status.value, **tenant.quotas.as_dict())
        self._written[tenant.id] = _Written(tenant.version, limits, self._clock() + self._ttl)
        self._rows.pop(tenant.id, None)

    def _current(self, tenant_id: UUID, row: Row | None) -> bool:
        """Whether `row` already shows everything this process wrote for the tenant."""
        written = self._written.get(tenant_id)
        if written is None:
            return True
        if row is None:
            return written.limits is None
        return int(row["version"]) >= written.version
