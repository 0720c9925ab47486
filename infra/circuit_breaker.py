"""Circuit breakers, one per integration, shared by every caller in the process (the test
endpoint, the health checker, sign-in).

closed: calls go through; `failure_threshold` (5) consecutive failures open it.
open: calls are refused at once (DependencyUnavailable) until `reset_seconds` (30 s) passed.
half-open: one trial call goes through; success closes the breaker, failure opens it again
(for another `reset_seconds`); other callers are refused while the trial runs.

Only a failure to reach the dependency counts; a refused credential means it is up. The clock is
injected so tests move time by hand. `snapshot()` feeds /metrics.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, TypeVar
from uuid import UUID

from domain.errors import DependencyUnavailable

T = TypeVar("T")
FAILURE_THRESHOLD = 5
RESET_SECONDS = 30.0


class BreakerState(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


@dataclass
class _Breaker:
    state: BreakerState = BreakerState.CLOSED
    failures: int = 0
    opened_at: float = 0.0
    trial_running: bool = False
    opened_total: int = 0


class CircuitBreakers:
    def __init__(
        self,
        *,
        failure_threshold: int = FAILURE_THRESHOLD,
        reset_seconds: float = RESET_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.failure_threshold = failure_threshold
        self.reset_seconds = reset_seconds
        self._clock = clock
        self._breakers: dict[UUID, _Breaker] = {}
        self._lock = threading.Lock()

    def call(self, key: UUID, attempt: Callable[[], T], failed: Callable[[T], bool]) -> T:
        """Run `attempt` unless the breaker of `key` is open; `failed(result)` says whether the
        result counts as a failure. An exception from `attempt` counts as one and propagates."""
        self._admit(key)
        try:
            result = attempt()
        except BaseException:
            self._outcome(key, success=False)
            raise
        self._outcome(key, success=not failed(result))
        return result

    def state(self, key: UUID) -> BreakerState:
        with self._lock:
            breaker = self._breakers.get(key)
            if breaker is None:
                return BreakerState.CLOSED
            self._maybe_half_open(breaker)
            return breaker.state

    def snapshot(self) -> dict[UUID, dict[str, Any]]:
        with self._lock:
            for breaker in self._breakers.values():
                self._maybe_half_open(breaker)
            return {
                key: {
                    "state": b.state.value,
                    "consecutive_failures": b.failures,
                    "opened_total": b.opened_total,
                }
                for key, b in self._breakers.items()
            }

    def _admit(self, key: UUID) -> None:
        with self._lock:
            breaker = self._breakers.setdefault(key, _Breaker())
            self._maybe_half_open(breaker)
            if breaker.state is BreakerState.CLOSED:
                return
            if breaker.state is BreakerState.HALF_OPEN and not breaker.trial_running:
                breaker.trial_running = True
                return
            retry = max(0.0, breaker.opened_at + self.reset_seconds - self._clock())
        msg = "the integration's circuit breaker is open after repeated connection failures"
        raise DependencyUnavailable(
            msg, {"integration_id": str(key), "retry_after_seconds": round(retry, 1)}
        )

    def _outcome(self, key: UUID, *, success: bool) -> None:
        with self._lock:
            breaker = self._breakers.setdefault(key, _Breaker())
            breaker.trial_running = False
            if success:
                breaker.state, breaker.failures = BreakerState.CLOSED, 0
                return
            breaker.failures += 1
            if (
                breaker.state is BreakerState.HALF_OPEN
                or breaker.failures >= self.failure_threshold
            ):
                if breaker.state is not BreakerState.OPEN:
                    breaker.opened_total += 1
                breaker.state, breaker.opened_at = BreakerState.OPEN, self._clock()

    def _maybe_half_open(self, breaker: _Breaker) -> None:
        if (
            breaker.state is BreakerState.OPEN
            and self._clock() - breaker.opened_at >= self.reset_seconds
        ):
            breaker.state = BreakerState.HALF_OPEN
