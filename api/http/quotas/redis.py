"""Limiters shared by every API process through Redis (`ACGS_REDIS_URL`): one tenant's budget
holds across all of them. Each check is one Lua script, so it is atomic in Redis.

- Requests per window, `tenant:{id}:rate`: a hash of one-second buckets (bucket index -> requests
  counted in it), the same sliding window as the in-process limiter (a window counts every bucket
  that overlaps it, so no window of the true length admits more than the limit). Buckets that
  left the window are deleted by the next check, so the count never depends on the key's
  expiry: the key expires (`idle_seconds`, by default the window and one bucket) only so that a
  tenant gone quiet costs Redis nothing.
- Requests in flight, `tenant:{id}:inflight`: a sorted set of this process's requests (member:
  the process id and a counter; score: when its lease ends). A process that dies with requests in
  flight frees their slots when their lease ends (`lease_seconds`, 5 minutes by default: a request
  taking longer stops counting then).

When Redis cannot be reached (or answers in error) the limiter does what `on_failure` says:
`open` admits the request (the quota is not enforced meanwhile; a warning is logged at most every
10 s), `closed` refuses it with 503 DEPENDENCY_UNAVAILABLE. Readiness reports which.
"""

from __future__ import annotations

import logging
import math
import os
import time
from collections.abc import Callable
from typing import Any
from uuid import UUID, uuid4

from redis import exceptions as redis_errors
from redis.asyncio import Redis

from api.http.quotas import RateDecision
from domain.errors import DependencyUnavailable

log = logging.getLogger(__name__)

FAILURE_MODES = ("open", "closed")
TIMEOUT_SECONDS = 0.25
_WARN_EVERY_SECONDS = 10.0
_ERRORS = (redis_errors.RedisError, OSError)

_HIT = """
local now = tonumber(ARGV[1])
local oldest = now - tonumber(ARGV[2]) + 1
local fields = redis.call('HGETALL', KEYS[1])
local total, tail = 0, now
for i = 1, #fields, 2 do
  local bucket = tonumber(fields[i])
  if bucket < oldest then
    redis.call('HDEL', KEYS[1], fields[i])
  else
    total = total + tonumber(fields[i + 1])
    if bucket < tail then tail = bucket end
  end
end
local allowed = 0
if ARGV[5] == '1' and total < tonumber(ARGV[3]) then
  redis.call('HINCRBY', KEYS[1], ARGV[1], 1)
  redis.call('PEXPIRE', KEYS[1], ARGV[4])
  total = total + 1
  allowed = 1
end
return {allowed, total, tail}
"""
_ACQUIRE = """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[2]) then return 0 end
redis.call('ZADD', KEYS[1], tonumber(ARGV[1]) + tonumber(ARGV[4]), ARGV[3])
redis.call('PEXPIRE', KEYS[1], ARGV[4])
return 1
"""


def redis_client(url: str, timeout: float = TIMEOUT_SECONDS) -> Redis:
    """A client that gives up quickly: a quota check must not hold a request for long."""
    return Redis.from_url(url, socket_timeout=timeout, socket_connect_timeout=timeout)


class _Failures:
    """What the limiters do when Redis fails them (see the module docstring)."""

    def __init__(self, on_failure: str) -> None:
        if on_failure not in FAILURE_MODES:
            msg = f"on_failure must be one of {FAILURE_MODES}, got {on_failure!r}"
            raise ValueError(msg)
        self.on_failure = on_failure
        self._warned_at = float("-inf")

    def failed(self, exc: BaseException) -> None:
        """Raises when failing closed; otherwise logs (at most every 10 s) and returns."""
        if self.on_failure == "closed":
            raise DependencyUnavailable(
                "the quota store is unavailable; try again shortly", {"dependency": "redis"}
            ) from None
        now = time.monotonic()
        if now - self._warned_at >= _WARN_EVERY_SECONDS:
            self._warned_at = now
            log.warning("quota store unreachable, admitting requests: %s", type(exc).__name__)


class RedisRateLimiter:
    def __init__(
        self,
        client: Redis,
        *,
        window_seconds: float = 60.0,
        buckets: int = 60,
        on_failure: str = "open",
        clock: Callable[[], float] = time.time,
        idle_seconds: float | None = None,
    ) -> None:
        self._client = client
        self._width = window_seconds / buckets
        self._slots = buckets + 1
        idle = self._slots * self._width if idle_seconds is None else idle_seconds
        self._ttl_ms = math.ceil(idle * 1000)
        self._clock = clock
        self._failures = _Failures(on_failure)
        self._script: Any = client.register_script(_HIT)

    @property
    def on_failure(self) -> str:
        return self._failures.on_failure

    async def hit(self, tenant_id: UUID, limit: int) -> RateDecision:
        now = self._clock()
        try:
            allowed, total, tail = await self._run(tenant_id, now, limit, count=True)
        except _ERRORS as exc:
            self._failures.failed(exc)
            unknown = math.ceil(now + self._width)
            return RateDecision(
                allowed=True, limit=limit, remaining=limit, reset_at=unknown, retry_after=0
            )
        reset_at = (tail + self._slots) * self._width
        return RateDecision(
            allowed=bool(allowed),
            limit=limit,
            remaining=max(0, limit - total),
            reset_at=math.ceil(reset_at),
            retry_after=0 if allowed else max(1, math.ceil(reset_at - now)),
        )

    async def current(self, tenant_id: UUID) -> int:
        try:
            _, total, _ = await self._run(tenant_id, self._clock(), 0, count=False)
        except _ERRORS as exc:
            self._failures.failed(exc)
            return 0
        return int(total)

    async def _run(self, tenant_id: UUID, now: float, limit: int, *, count: bool) -> list[int]:
        bucket = int(now // self._width)
        args = [bucket, self._slots, limit, self._ttl_ms, 1 if count else 0]
        result: list[int] = await self._script(keys=[f"tenant:{tenant_id}:rate"], args=args)
        return result

    async def close(self) -> None:
        """Close the client (shared with the concurrency limiter of the same services)."""
        await self._client.aclose()

    async def ping(self) -> bool:
        try:
            return bool(await self._client.ping())
        except _ERRORS:
            return False


class RedisConcurrencyLimiter:
    def __init__(
        self,
        client: Redis,
        *,
        lease_seconds: float = 300.0,
        on_failure: str = "open",
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._client = client
        self._lease_ms = math.ceil(lease_seconds * 1000)
        self._clock = clock
        self._failures = _Failures(on_failure)
        self._script: Any = client.register_script(_ACQUIRE)
        self._process = f"{os.getpid()}-{uuid4().hex[:8]}"
        self._counter = 0
        self._held: dict[UUID, list[str]] = {}  # this process's members, by tenant
        self._unguarded: dict[UUID, int] = {}  # admitted while Redis failed open

    async def acquire(self, tenant_id: UUID, limit: int) -> bool:
        self._counter += 1
        member = f"{self._process}:{self._counter}"
        now_ms = math.floor(self._clock() * 1000)
        try:
            admitted = await self._script(
                keys=[_inflight(tenant_id)], args=[now_ms, limit, member, self._lease_ms]
            )
        except _ERRORS as exc:
            self._failures.failed(exc)
            self._unguarded[tenant_id] = self._unguarded.get(tenant_id, 0) + 1
            return True
        if not admitted:
            return False
        self._held.setdefault(tenant_id, []).append(member)
        return True

    async def release(self, tenant_id: UUID) -> None:
        unguarded = self._unguarded.get(tenant_id, 0)
        if unguarded:  # a request admitted without Redis holds no member there
            if unguarded == 1:
                del self._unguarded[tenant_id]
            else:
                self._unguarded[tenant_id] = unguarded - 1
            return
        held = self._held.get(tenant_id)
        if not held:
            return
        member = held.pop()
        if not held:
            del self._held[tenant_id]
        try:
            await self._client.zrem(_inflight(tenant_id), member)
        except _ERRORS:
            log.warning("quota store unreachable: a request slot frees when its lease ends")

    async def current(self, tenant_id: UUID) -> int:
        now_ms = math.floor(self._clock() * 1000)
        try:
            return int(await self._client.zcount(_inflight(tenant_id), now_ms, "+inf"))
        except _ERRORS as exc:
            self._failures.failed(exc)
            return 0


def _inflight(tenant_id: UUID) -> str:
    return f"tenant:{tenant_id}:inflight"
