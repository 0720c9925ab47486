"""Per-tenant quotas: the limiter ports and what they decide.

Callers (the edge middleware, the tenant read route) use only these protocols. The in-process
implementations are in `quotas.memory`; a shared Redis implementation (keys `tenant:{id}:*`) can
be wired in the composition root without touching a caller.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol
from uuid import UUID


@dataclass(frozen=True, slots=True)
class RateDecision:
    allowed: bool
    limit: int
    remaining: int
    reset_at: int  # epoch seconds when the oldest counted request leaves the window
    retry_after: int  # seconds; 0 when allowed


class RateLimiter(Protocol):
    """Requests per sliding window (one minute) per tenant."""

    async def hit(self, tenant_id: UUID, limit: int) -> RateDecision:
        """Count one request if the tenant is under `limit`; say whether it was admitted."""
        ...

    async def current(self, tenant_id: UUID) -> int:
        """Requests counted in the tenant's window now."""
        ...


class ConcurrencyLimiter(Protocol):
    """In-flight requests per tenant."""

    async def acquire(self, tenant_id: UUID, limit: int) -> bool: ...

    async def release(self, tenant_id: UUID) -> None: ...

    async def current(self, tenant_id: UUID) -> int: ...


__all__ = ["ConcurrencyLimiter", "RateDecision", "RateLimiter"]
