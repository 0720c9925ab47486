"""Counts, latency percentiles and the rollback window."""

from __future__ import annotations

import pytest

from domain.shadow.comparison import Agreement
from domain.shadow.metrics import (
    LATENCY_BOUNDS_MS,
    RecentWindow,
    RollbackRule,
    Tally,
    latency_bucket,
    percentile,
)


def test_agreement_rate_and_kinds_are_counted_exactly() -> None:
    tally = Tally()
    for kind, n in [
        (Agreement.AGREE, 900),
        (Agreement.MISSED_VIOLATION, 30),
        (Agreement.EXTRA_ALLOW, 50),
        (Agreement.REGO_ERROR, 20),
    ]:
        for _ in range(n):
            tally.add(kind, 1.0, None if kind is Agreement.REGO_ERROR else 0.1)
    summary = tally.summary()
    assert summary["decisions"] == 1000
    assert summary["agreement_rate"] == 0.9
    assert summary["disagreements"] == {
        "legacy_allow_rego_deny": 30,
        "legacy_deny_rego_allow": 50,
        "rego_error": 20,
    }
    assert summary["missed_violations"] == 30
    assert sum(tally.rego_latency) == 980  # an error has no Rego latency


def test_percentiles_are_within_one_bucket() -> None:
    tally = Tally()
    for i in range(1, 101):
        tally.add(Agreement.AGREE, float(i), i / 100)
    p50 = percentile(tally.legacy_latency, 0.5)
    p99 = percentile(tally.legacy_latency, 0.99)
    assert p50 is not None
    assert 50 <= p50 <= 55
    assert p99 is not None
    assert 99 <= p99 <= 109
    assert percentile([0] * 10, 0.5) is None


def test_bucket_bounds_grow_by_ten_percent() -> None:
    assert latency_bucket(0.0) == 0
    assert latency_bucket(LATENCY_BOUNDS_MS[10]) == 10
    assert LATENCY_BOUNDS_MS[11] / LATENCY_BOUNDS_MS[10] == pytest.approx(1.1)


def test_tallies_merge_and_survive_a_row_round_trip() -> None:
    a, b = Tally(), Tally()
    a.add(Agreement.AGREE, 1.0, 0.5)
    b.add(Agreement.EXTRA_ALLOW, 3.0, 0.7)
    a.merge(b)
    again = Tally.from_row(a.as_row())
    assert again == a
    assert again.total == 2


def test_the_window_fires_over_the_threshold_only_with_enough_decisions() -> None:
    window = RecentWindow(RollbackRule(threshold=0.05, window_decisions=1000, min_decisions=100))
    for i in range(95):
        window.add(float(i), Agreement.AGREE)
    for i in range(5):
        window.add(95.0 + i, Agreement.REGO_ERROR)
    assert window.breach(100.0) is None  # 5 of 100 = 5 %: not over
    window.add(101.0, Agreement.MISSED_VIOLATION)
    breach = window.breach(101.0)
    assert breach is not None
    assert (breach.decisions, breach.errors, breach.missed_violations) == (101, 5, 1)
    assert breach.rate == pytest.approx(6 / 101)
    assert breach.as_dict()["window_started_at"] == "1970-01-01T00:00:00.000+00:00"
    assert breach.as_dict()["window_ended_at"] == "1970-01-01T00:01:41.000+00:00"


def test_the_window_keeps_the_last_n_decisions_and_the_last_seconds() -> None:
    rule = RollbackRule(window_decisions=200, window_seconds=300.0, min_decisions=10)
    window = RecentWindow(rule)
    for i in range(50):
        window.add(float(i), Agreement.REGO_ERROR)  # a burst long ago
    for i in range(200):
        window.add(1000.0 + i, Agreement.AGREE)
    assert window.breach(1200.0) is None  # the errors fell out of the last 200
    for _ in range(50):
        window.add(1300.0, Agreement.REGO_ERROR)
    assert window.breach(1300.0) is not None
    assert window.breach(2000.0) is None  # five minutes later, nothing is left in the window
