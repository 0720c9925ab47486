"""Small statistics shared by the benchmarks: percentiles and a one-line summary."""

from __future__ import annotations

import statistics


def percentile(samples: list[float], p: float) -> float:
    """The p-th percentile (0-100) by nearest rank."""
    ordered = sorted(samples)
    if not ordered:
        return float("nan")
    rank = max(0, min(len(ordered) - 1, round(p / 100 * len(ordered) + 0.5) - 1))
    return ordered[rank]


def summary_ms(samples: list[float]) -> str:
    """p50/p99/max of durations given in seconds, printed in milliseconds."""
    ms = [s * 1000 for s in samples]
    return (
        f"p50 {percentile(ms, 50):.3f} ms  p99 {percentile(ms, 99):.3f} ms  "
        f"max {max(ms):.3f} ms  mean {statistics.fmean(ms):.3f} ms  n={len(ms)}"
    )
