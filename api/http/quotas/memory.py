"""In-process limiters: exact for one API process (several processes need the Redis ones).

The rate limiter is a sliding window kept as a ring of sub-buckets (60 one-second buckets for a
one-minute window). It counts every bucket that overlaps the last window, one more than fits in
it, so no window of the true length ever admits more than the limit (it may admit slightly fewer,
at most one bucket's worth). Memory is constant per tenant; each hit is O(1) amortized.
Both run on the event loop thread only, so they need no locks.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from uuid import UUID

from api.http.quotas import RateDecision


class _Window:
    __slots__ = ("counts", "head", "tail", "total")

    def __init__(self, slots: int, bucket: int) -> None:
        self.counts = [0] * slots
        self.head = bucket  # absolute index of the newest bucket
        self.tail = bucket  # absolute index of the oldest bucket that may hold requests
        self.total = 0


class SlidingWindowRateLimiter:
    def __init__(
        self,
        window_seconds: float = 60.0,
        buckets: int = 60,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._width = window_seconds / buckets
        self._slots = buckets + 1
        self._clock = clock
        self._windows: dict[UUID, _Window] = {}

    async def hit(self, tenant_id: UUID, limit: int) -> RateDecision:
        now = self._clock()
        window = self._advance(tenant_id, now)
        allowed = window.total < limit
        if allowed:
            window.counts[window.head % self._slots] += 1
            window.total += 1
        reset_at = (window.tail + self._slots) * self._width
        return RateDecision(
            allowed=allowed,
            limit=limit,
            remaining=max(0, limit - window.total),
            reset_at=math.ceil(reset_at),
            retry_after=0 if allowed else max(1, math.ceil(reset_at - now)),
        )

    async def current(self, tenant_id: UUID) -> int:
        if tenant_id not in self._windows:
            return 0
        return self._advance(tenant_id, self._clock()).total

    def _advance(self, tenant_id: UUID, now: float) -> _Window:
        bucket = int(now // self._width)
        window = self._windows.get(tenant_id)
        if window is None:
            window = self._windows[tenant_id] = _Window(self._slots, bucket)
            return window
        if bucket - window.head >= self._slots:
            window.counts = [0] * self._slots
            window.total = 0
            window.head = window.tail = bucket
            return window
        while window.head < bucket:
            window.head += 1
            slot = window.head % self._slots
            window.total -= window.counts[slot]
            window.counts[slot] = 0
        oldest = bucket - self._slots + 1
        window.tail = max(window.tail, oldest)
        while window.tail < bucket and window.counts[window.tail % self._slots] == 0:
            window.tail += 1
        return window


class InProcessConcurrencyLimiter:
    def __init__(self) -> None:
        self._in_flight: dict[UUID, int] = {}

    async def acquire(self, tenant_id: UUID, limit: int) -> bool:
        current = self._in_flight.get(tenant_id, 0)
        if current >= limit:
            return False
        self._in_flight[tenant_id] = current + 1
        return True

    async def release(self, tenant_id: UUID) -> None:
        current = self._in_flight.get(tenant_id, 0) - 1
        if current > 0:
            self._in_flight[tenant_id] = current
        else:
            self._in_flight.pop(tenant_id, None)

    async def current(self, tenant_id: UUID) -> int:
        return self._in_flight.get(tenant_id, 0)
