"""Shadow-mode arithmetic (pure): outcome counts, latency histograms and their percentiles, and
the sliding window the rollback rule watches.

Latencies are counted in fixed logarithmic buckets (each 10 % wider than the one before, from
5 µs to about a minute), so counts of any number of decisions add up exactly, in a process or in
the database, and a percentile is known to within one bucket (10 %).
"""

from __future__ import annotations

from bisect import bisect_left
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from domain.shadow.comparison import Agreement

_FIRST_BOUND_MS = 0.005
_GROWTH = 1.1
LATENCY_BOUNDS_MS: tuple[float, ...] = tuple(_FIRST_BOUND_MS * _GROWTH**i for i in range(172))
LATENCY_BUCKETS = len(LATENCY_BOUNDS_MS) + 1  # the last one holds everything slower
KINDS: tuple[Agreement, ...] = tuple(Agreement)


def latency_bucket(ms: float) -> int:
    return bisect_left(LATENCY_BOUNDS_MS, ms)


def percentile(histogram: Sequence[int], q: float) -> float | None:
    """The upper bound (ms) of the bucket holding the q-quantile; None with no sample."""
    total = sum(histogram)
    if total == 0:
        return None
    rank = max(1, -(-int(q * total * 1_000_000) // 1_000_000))  # ceil(q * total), at least 1
    seen = 0
    for index, count in enumerate(histogram):
        seen += count
        if seen >= rank:
            return round(LATENCY_BOUNDS_MS[min(index, len(LATENCY_BOUNDS_MS) - 1)], 4)
    return None  # pragma: no cover - the loop always reaches `total`


@dataclass
class Tally:
    """Counts of outcomes by kind and the latency histograms of both sides."""

    counts: dict[Agreement, int] = field(default_factory=lambda: dict.fromkeys(KINDS, 0))
    legacy_latency: list[int] = field(default_factory=lambda: [0] * LATENCY_BUCKETS)
    rego_latency: list[int] = field(default_factory=lambda: [0] * LATENCY_BUCKETS)

    def add(self, kind: Agreement, legacy_ms: float, rego_ms: float | None) -> None:
        self.counts[kind] += 1
        self.legacy_latency[latency_bucket(legacy_ms)] += 1
        if rego_ms is not None:
            self.rego_latency[latency_bucket(rego_ms)] += 1

    def merge(self, other: Tally) -> None:
        for kind in KINDS:
            self.counts[kind] += other.counts[kind]
        for mine, theirs in (
            (self.legacy_latency, other.legacy_latency),
            (self.rego_latency, other.rego_latency),
        ):
            for index, count in enumerate(theirs):
                mine[index] += count

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    @property
    def agreement_rate(self) -> float | None:
        total = self.total
        return self.counts[Agreement.AGREE] / total if total else None

    def summary(self) -> dict[str, Any]:
        return {
            "decisions": self.total,
            "agreements": self.counts[Agreement.AGREE],
            "agreement_rate": _rate(self.agreement_rate),
            "disagreements": {
                kind.value: self.counts[kind] for kind in KINDS if kind is not Agreement.AGREE
            },
            "missed_violations": self.counts[Agreement.MISSED_VIOLATION],
            "errors": self.counts[Agreement.REGO_ERROR],
            "latency_ms": {
                "legacy": {
                    "p50": percentile(self.legacy_latency, 0.5),
                    "p99": percentile(self.legacy_latency, 0.99),
                },
                "rego": {
                    "p50": percentile(self.rego_latency, 0.5),
                    "p99": percentile(self.rego_latency, 0.99),
                },
            },
        }

    def as_row(self) -> dict[str, Any]:
        """The counters as the metrics store keeps them."""
        return {
            **{kind.value: self.counts[kind] for kind in KINDS},
            "legacy_latency": list(self.legacy_latency),
            "rego_latency": list(self.rego_latency),
        }

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> Tally:
        tally = cls()
        for kind in KINDS:
            tally.counts[kind] = int(row[kind.value])
        tally.legacy_latency = _padded(row["legacy_latency"])
        tally.rego_latency = _padded(row["rego_latency"])
        return tally


def _padded(values: Sequence[int]) -> list[int]:
    return [*map(int, values), *[0] * (LATENCY_BUCKETS - len(values))][:LATENCY_BUCKETS]


def _iso(epoch_seconds: float) -> str:
    return datetime.fromtimestamp(epoch_seconds, UTC).isoformat(timespec="milliseconds")


def _rate(value: float | None) -> float | None:
    return None if value is None else round(value, 6)


@dataclass(frozen=True)
class RollbackRule:
    """Roll back to 0 % when errors and critical disagreements exceed `threshold` of the last
    `window_decisions` decisions of the last `window_seconds` (at least `min_decisions` of them,
    so that one early error does not decide alone)."""

    threshold: float = 0.05
    window_decisions: int = 1000
    window_seconds: float = 300.0
    min_decisions: int = 100

    def as_dict(self) -> dict[str, Any]:
        return {
            "threshold": self.threshold,
            "window_decisions": self.window_decisions,
            "window_seconds": self.window_seconds,
            "min_decisions": self.min_decisions,
        }


@dataclass(frozen=True)
class Breach:
    """The evidence of a rollback: what the window held when the rule fired."""

    decisions: int
    errors: int
    missed_violations: int
    rate: float
    threshold: float
    window_started_at: float  # epoch seconds
    window_ended_at: float

    def as_dict(self) -> dict[str, Any]:
        return {
            "window_decisions": self.decisions,
            "errors": self.errors,
            "critical_disagreements": self.missed_violations,
            "rate": round(self.rate, 6),
            "threshold": self.threshold,
            "window_started_at": _iso(self.window_started_at),
            "window_ended_at": _iso(self.window_ended_at),
        }


class RecentWindow:
    """The last decisions of one tenant at one step, as the rollback rule sees them."""

    def __init__(self, rule: RollbackRule) -> None:
        self.rule = rule
        self._entries: deque[tuple[float, Agreement]] = deque(maxlen=rule.window_decisions)
        self._errors = 0
        self._missed = 0

    def add(self, at: float, kind: Agreement) -> None:
        if len(self._entries) == self._entries.maxlen:
            self._forget(self._entries[0][1])
        self._entries.append((at, kind))
        self._errors += kind is Agreement.REGO_ERROR
        self._missed += kind is Agreement.MISSED_VIOLATION

    def _forget(self, kind: Agreement) -> None:
        self._errors -= kind is Agreement.REGO_ERROR
        self._missed -= kind is Agreement.MISSED_VIOLATION

    def breach(self, now: float) -> Breach | None:
        """The evidence if the rule fires now, else None."""
        horizon = now - self.rule.window_seconds
        while self._entries and self._entries[0][0] < horizon:
            self._forget(self._entries.popleft()[1])
        count = len(self._entries)
        if count < self.rule.min_decisions:
            return None
        rate = (self._errors + self._missed) / count
        if rate <= self.rule.threshold:
            return None
        return Breach(
            decisions=count,
            errors=self._errors,
            missed_violations=self._missed,
            rate=rate,
            threshold=self.rule.threshold,
            window_started_at=self._entries[0][0],
            window_ended_at=self._entries[-1][0],
        )
