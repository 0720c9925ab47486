"""Bounded work per policy conversion: a time budget checked cooperatively at the stages of the
pipeline (input generation, the gate). The domain reads no clock of its own: the caller passes one.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

from domain.errors import DomainError

Clock = Callable[[], float]


class ConversionBudgetExceeded(DomainError):
    """One policy took longer than the configured time budget; it is failed, not converted."""

    code = "CONVERSION_TIME_BUDGET_EXCEEDED"


def _frozen_clock() -> float:
    return 0.0


@dataclass(frozen=True, slots=True)
class Deadline:
    """`check` raises once `clock()` has passed `at`; `seconds` is the budget, for the message."""

    clock: Clock
    at: float
    seconds: float

    @classmethod
    def after(cls, seconds: float | None, clock: Clock | None) -> Deadline:
        if seconds is None or clock is None:
            return NO_DEADLINE
        return cls(clock, clock() + seconds, seconds)

    def check(self, stage: str) -> None:
        if self.clock() > self.at:
            raise ConversionBudgetExceeded(
                f"the conversion of this policy took longer than its budget of "
                f"{self.seconds:g} s (stopped during {stage})",
                {"budget_seconds": self.seconds, "stage": stage},
            )


NO_DEADLINE = Deadline(_frozen_clock, math.inf, math.inf)
