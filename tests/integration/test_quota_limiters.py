"""The quota limiters' contract, on a fake clock: the in-process ones and the Redis ones (a real
redis-server) pass the same tests. Then what only the shared ones do: several processes share
one budget, a dead process's slots come back, and an unreachable Redis fails open or closed."""

from __future__ import annotations

import random
import uuid
from bisect import bisect_right
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import pytest

from api.http.quotas import ConcurrencyLimiter, RateLimiter
from api.http.quotas.memory import InProcessConcurrencyLimiter, SlidingWindowRateLimiter
from api.http.quotas.redis import (
    TIMEOUT_SECONDS,
    RedisConcurrencyLimiter,
    RedisRateLimiter,
    redis_client,
)
from domain.errors import DependencyUnavailable
from tests.peers.redis import Redis, running_redis


class Clock:
    def __init__(self, now: float = 1_700_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class Clients:
    """Redis clients made for one test, closed after it."""

    def __init__(self) -> None:
        self.made: list[Any] = []

    def __call__(self, server: Redis, timeout: float = TIMEOUT_SECONDS) -> Any:
        client = redis_client(server.url, timeout)
        self.made.append(client)
        return client


@pytest.fixture
async def clients() -> AsyncIterator[Clients]:
    made = Clients()
    yield made
    for client in made.made:
        await client.aclose()


# The contract's Redis limiters wait longer than a request would (0.25 s) and fail closed: on
# a busy machine a slow answer must not be taken for an outage and admitted silently.
CONTRACT_TIMEOUT = 5.0


class Limiters:
    """Makes limiters of one kind (`memory` or `redis`) on a given clock."""

    def __init__(self, kind: str, redis: Redis | None, clients: Clients) -> None:
        self.kind = kind
        self._redis = redis
        self._clients = clients

    def rate(self, clock: Clock, **kwargs: Any) -> RateLimiter:
        if self._redis is None:
            return SlidingWindowRateLimiter(clock=clock, **kwargs)
        # Redis expires an idle key in real time, not on the test's clock, which stands still
        # while a loaded machine stalls: the key must outlive any stall.
        return RedisRateLimiter(
            self._clients(self._redis, CONTRACT_TIMEOUT),
            on_failure="closed",
            clock=clock,
            idle_seconds=3600,
            **kwargs,
        )

    def concurrency(self, clock: Clock | None = None) -> ConcurrencyLimiter:
        if self._redis is None:
            return InProcessConcurrencyLimiter()
        return RedisConcurrencyLimiter(
            self._clients(self._redis, CONTRACT_TIMEOUT),
            on_failure="closed",
            clock=clock or Clock(),
        )


@pytest.fixture(params=["memory", pytest.param("redis", marks=pytest.mark.redis)])
def limiters(request: pytest.FixtureRequest, clients: Clients) -> Limiters:
    if request.param == "memory":
        return Limiters("memory", None, clients)
    return Limiters("redis", request.getfixturevalue("redis_server"), clients)


async def test_admits_up_to_the_limit_then_refuses_with_retry_after(limiters: Limiters) -> None:
    clock = Clock()
    limiter = limiters.rate(clock)
    tenant = uuid.uuid4()
    decisions = [await limiter.hit(tenant, 3) for _ in range(4)]
    assert [d.allowed for d in decisions] == [True, True, True, False]
    assert [d.remaining for d in decisions] == [2, 1, 0, 0]
    refused = decisions[-1]
    assert 60 <= refused.retry_after <= 62
    assert refused.reset_at >= clock.now + 60
    assert await limiter.current(tenant) == 3


async def test_the_window_slides(limiters: Limiters) -> None:
    clock = Clock(1_700_000_000.5)
    limiter = limiters.rate(clock)
    tenant = uuid.uuid4()
    for _ in range(2):
        assert (await limiter.hit(tenant, 2)).allowed
    clock.now += 30
    assert not (await limiter.hit(tenant, 2)).allowed
    clock.now += 31.5  # the first bucket has left the window
    assert (await limiter.hit(tenant, 2)).allowed
    clock.now += 3600
    assert await limiter.current(tenant) == 0


async def test_tenants_have_separate_budgets(limiters: Limiters) -> None:
    limiter = limiters.rate(Clock())
    a, b = uuid.uuid4(), uuid.uuid4()
    assert (await limiter.hit(a, 1)).allowed
    assert not (await limiter.hit(a, 1)).allowed
    assert (await limiter.hit(b, 1)).allowed


async def test_no_window_of_the_true_length_ever_exceeds_the_limit(limiters: Limiters) -> None:
    clock = Clock()
    window, limit = 1.0, 50
    limiter = limiters.rate(clock, window_seconds=window, buckets=20)
    tenant = uuid.uuid4()
    rng = random.Random(7)
    admitted: list[float] = []
    for _ in range(20_000 if limiters.kind == "memory" else 5_000):
        clock.now += rng.expovariate(400)  # ~8x the allowed rate, in random bursts
        if (await limiter.hit(tenant, limit)).allowed:
            admitted.append(clock.now)
    worst = max(bisect_right(admitted, t) - bisect_right(admitted, t - window) for t in admitted)
    assert worst <= limit
    rate = len(admitted) / (admitted[-1] - admitted[0])
    assert rate >= limit / window * 0.9  # and it does not starve the tenant either


async def test_concurrency_limiter_counts_in_flight_requests(limiters: Limiters) -> None:
    limiter = limiters.concurrency()
    tenant = uuid.uuid4()
    assert await limiter.acquire(tenant, 2)
    assert await limiter.acquire(tenant, 2)
    assert not await limiter.acquire(tenant, 2)
    assert await limiter.current(tenant) == 2
    await limiter.release(tenant)
    assert await limiter.acquire(tenant, 2)
    for _ in range(2):
        await limiter.release(tenant)
    assert await limiter.current(tenant) == 0


# --- what only the shared (Redis) limiters do -----------------------------------------------


@pytest.mark.redis
async def test_two_processes_share_one_budget(redis_server: Redis, clients: Clients) -> None:
    clock = Clock()
    first, second = (RedisRateLimiter(clients(redis_server), clock=clock) for _ in "ab")
    tenant = uuid.uuid4()
    admitted = 0
    for i in range(300):
        admitted += (await (first if i % 2 else second).hit(tenant, 100)).allowed
    assert admitted == 100
    assert await first.current(tenant) == await second.current(tenant) == 100
    slots_a, slots_b = (RedisConcurrencyLimiter(clients(redis_server)) for _ in "ab")
    assert await slots_a.acquire(tenant, 2)
    assert await slots_b.acquire(tenant, 2)
    assert not await slots_a.acquire(tenant, 2)
    await slots_b.release(tenant)
    assert await slots_a.acquire(tenant, 2)
    assert await slots_b.current(tenant) == 2


@pytest.mark.redis
async def test_a_dead_process_frees_its_slots_when_their_lease_ends(
    redis_server: Redis, clients: Clients
) -> None:
    clock = Clock()
    dead = RedisConcurrencyLimiter(clients(redis_server), lease_seconds=30, clock=clock)
    alive = RedisConcurrencyLimiter(clients(redis_server), lease_seconds=30, clock=clock)
    tenant = uuid.uuid4()
    assert await dead.acquire(tenant, 1)  # and the process dies without releasing it
    assert not await alive.acquire(tenant, 1)
    clock.now += 29
    assert not await alive.acquire(tenant, 1)
    clock.now += 2
    assert await alive.acquire(tenant, 1)


@pytest.fixture
def lone_redis() -> Iterator[Redis]:
    """A Redis of this test's own, which it may stop and start."""
    with running_redis() as server:
        yield server


@pytest.mark.redis
@pytest.mark.parametrize("mode", ["open", "closed"])
async def test_an_unreachable_redis_fails_open_or_closed_and_recovers(
    lone_redis: Redis, mode: str, caplog: pytest.LogCaptureFixture, clients: Clients
) -> None:
    clock = Clock()
    rate = RedisRateLimiter(clients(lone_redis), on_failure=mode, clock=clock)
    slots = RedisConcurrencyLimiter(clients(lone_redis), on_failure=mode, clock=clock)
    tenant = uuid.uuid4()
    assert (await rate.hit(tenant, 1)).allowed
    assert not (await rate.hit(tenant, 1)).allowed
    assert await rate.ping()
    held = uuid.uuid4()
    assert await slots.acquire(held, 1)  # its slot is to be freed while Redis is away
    lone_redis.stop()
    assert not await rate.ping()
    await slots.release(held)
    assert "a request slot frees when its lease ends" in caplog.text
    attempts: list[Callable[[], Any]] = [
        lambda: rate.hit(tenant, 1),
        lambda: slots.acquire(tenant, 1),
        lambda: rate.current(tenant),
        lambda: slots.current(tenant),
    ]
    if mode == "closed":
        for attempt in attempts:
            with pytest.raises(DependencyUnavailable):
                await attempt()
    else:
        decision = await rate.hit(tenant, 1)
        assert decision.allowed  # admitted: the quota is not enforced while Redis is away
        assert await slots.acquire(tenant, 1)
        assert await slots.acquire(tenant, 1)
        assert await rate.current(tenant) == await slots.current(tenant) == 0  # not known
        await slots.release(tenant)  # a slot taken without Redis is released without it
        await slots.release(tenant)
        await slots.release(tenant)  # one release too many: nothing is held
        admitting = [r for r in caplog.records if "admitting requests" in r.getMessage()]
        assert len(admitting) == 2  # once per limiter, not for every request
        assert lone_redis.url not in caplog.text
    lone_redis.start()  # the same port, no data kept: the clients reconnect by themselves
    assert await rate.ping()
    assert (await rate.hit(tenant, 1)).allowed  # counting again, from an empty window
    assert not (await rate.hit(tenant, 1)).allowed
    assert await slots.acquire(tenant, 1)
    assert not await slots.acquire(tenant, 1)
    with pytest.raises(ValueError, match="on_failure must be one of"):
        RedisRateLimiter(clients(lone_redis), on_failure="sometimes")
