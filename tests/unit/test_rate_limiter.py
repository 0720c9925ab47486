"""The in-process limiters, on a fake clock."""

from __future__ import annotations

import random
import uuid
from bisect import bisect_right

from api.http.quotas.memory import InProcessConcurrencyLimiter, SlidingWindowRateLimiter


class Clock:
    def __init__(self, now: float = 1_700_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


async def test_admits_up_to_the_limit_then_refuses_with_retry_after() -> None:
    clock = Clock()
    limiter = SlidingWindowRateLimiter(clock=clock)
    tenant = uuid.uuid4()
    decisions = [await limiter.hit(tenant, 3) for _ in range(4)]
    assert [d.allowed for d in decisions] == [True, True, True, False]
    assert [d.remaining for d in decisions] == [2, 1, 0, 0]
    refused = decisions[-1]
    assert 60 <= refused.retry_after <= 62
    assert refused.reset_at >= clock.now + 60
    assert await limiter.current(tenant) == 3


async def test_the_window_slides() -> None:
    clock = Clock(1_700_000_000.5)
    limiter = SlidingWindowRateLimiter(clock=clock)
    tenant = uuid.uuid4()
    for _ in range(2):
        assert (await limiter.hit(tenant, 2)).allowed
    clock.now += 30
    assert not (await limiter.hit(tenant, 2)).allowed
    clock.now += 31.5  # the first bucket has left the window
    assert (await limiter.hit(tenant, 2)).allowed
    clock.now += 3600
    assert await limiter.current(tenant) == 0


async def test_tenants_have_separate_budgets() -> None:
    limiter = SlidingWindowRateLimiter(clock=Clock())
    a, b = uuid.uuid4(), uuid.uuid4()
    assert (await limiter.hit(a, 1)).allowed
    assert not (await limiter.hit(a, 1)).allowed
    assert (await limiter.hit(b, 1)).allowed


async def test_no_window_of_the_true_length_ever_exceeds_the_limit() -> None:
    clock = Clock()
    window, limit = 1.0, 50
    limiter = SlidingWindowRateLimiter(window_seconds=window, buckets=20, clock=clock)
    tenant = uuid.uuid4()
    rng = random.Random(7)
    admitted: list[float] = []
    for _ in range(20_000):
        clock.now += rng.expovariate(400)  # ~8x the allowed rate, in random bursts
        if (await limiter.hit(tenant, limit)).allowed:
            admitted.append(clock.now)
    worst = max(bisect_right(admitted, t) - bisect_right(admitted, t - window) for t in admitted)
    assert worst <= limit
    rate = len(admitted) / (admitted[-1] - admitted[0])
    assert rate >= limit / window * 0.9  # and it does not starve the tenant either


async def test_concurrency_limiter_counts_in_flight_requests() -> None:
    limiter = InProcessConcurrencyLimiter()
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
