"""The per-integration circuit breaker on a clock the test moves: opens after N consecutive
failures, refuses while open, lets one trial through when half-open, closes on success."""

from __future__ import annotations

from uuid import uuid4

import pytest

from domain.errors import DependencyUnavailable
from infra.circuit_breaker import BreakerState, CircuitBreakers
from tests.peers.http import ManualClock


def _fail(breakers: CircuitBreakers, key: object) -> None:
    breakers.call(key, lambda: "down", failed=lambda r: r == "down")  # type: ignore[arg-type]


def test_opens_after_five_consecutive_failures_and_refuses_without_calling() -> None:
    clock = ManualClock()
    breakers, key = CircuitBreakers(clock=clock), uuid4()
    for _ in range(4):
        _fail(breakers, key)
    assert breakers.state(key) is BreakerState.CLOSED
    _fail(breakers, key)
    assert breakers.state(key) is BreakerState.OPEN
    calls = []
    with pytest.raises(DependencyUnavailable) as refused:
        breakers.call(key, lambda: calls.append(1), failed=lambda _: False)
    assert calls == []
    assert refused.value.code == "DEPENDENCY_UNAVAILABLE"
    assert refused.value.details["retry_after_seconds"] == 30.0


def test_a_success_resets_the_count() -> None:
    breakers, key = CircuitBreakers(clock=ManualClock()), uuid4()
    for _ in range(4):
        _fail(breakers, key)
    breakers.call(key, lambda: "up", failed=lambda r: r == "down")
    for _ in range(4):
        _fail(breakers, key)
    assert breakers.state(key) is BreakerState.CLOSED


def test_half_open_after_the_reset_time_one_trial_then_closed_or_open_again() -> None:
    clock = ManualClock()
    breakers, key = CircuitBreakers(failure_threshold=2, reset_seconds=30, clock=clock), uuid4()
    _fail(breakers, key)
    _fail(breakers, key)
    clock.now += 29.9
    assert breakers.state(key) is BreakerState.OPEN
    clock.now += 0.1
    assert breakers.state(key) is BreakerState.HALF_OPEN
    _fail(breakers, key)  # the trial fails: open for another 30 s
    assert breakers.state(key) is BreakerState.OPEN
    clock.now += 30
    assert breakers.call(key, lambda: "up", failed=lambda _: False) == "up"
    assert breakers.state(key) is BreakerState.CLOSED
    assert breakers.snapshot()[key]["opened_total"] == 2


def test_an_exception_counts_as_a_failure_and_breakers_are_per_integration() -> None:
    breakers = CircuitBreakers(failure_threshold=1, clock=ManualClock())
    broken, other = uuid4(), uuid4()

    def boom() -> None:
        raise OSError("refused")

    with pytest.raises(OSError, match="refused"):
        breakers.call(broken, boom, failed=lambda _: False)
    assert breakers.state(broken) is BreakerState.OPEN
    assert breakers.state(other) is BreakerState.CLOSED
