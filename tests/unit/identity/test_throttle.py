"""The sign-in throttle on a clock the test moves: `limit` failures within the window lock the
key until the oldest leaves it; a success clears the key; other keys are not affected; quiet keys
are forgotten when the table is full."""

from __future__ import annotations

import pytest

import commands.sign_in
from commands.sign_in import Throttle


class Clock:
    now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_five_failures_lock_the_key_until_the_first_leaves_the_window() -> None:
    clock = Clock()
    throttle = Throttle(limit=5, window=60, clock=clock)
    for _ in range(4):
        throttle.failed("acme/bob")
        clock.now += 1
    assert throttle.retry_after("acme/bob") == 0
    throttle.failed("acme/bob")
    assert 55 <= throttle.retry_after("acme/bob") <= 61
    assert throttle.retry_after("acme/alice") == 0
    clock.now += 57  # the first failure (at 1000) leaves the window at 1060
    assert throttle.retry_after("acme/bob") == 0


def test_a_success_clears_the_key() -> None:
    throttle = Throttle(limit=2, window=60, clock=Clock())
    throttle.failed("k")
    throttle.succeeded("k")
    throttle.failed("k")
    assert throttle.retry_after("k") == 0


def test_quiet_keys_are_forgotten_when_the_table_is_full(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(commands.sign_in, "MAX_THROTTLED_KEYS", 3)
    clock = Clock()
    throttle = Throttle(limit=5, window=60, clock=clock)
    for key in ("a", "b", "c"):
        throttle.failed(key)
    clock.now += 61
    throttle.failed("d")
    assert set(throttle._failures) == {"d"}
