"""The benchmarks' verdict: a missed target is named and makes the run exit 1."""

from __future__ import annotations

import pytest

from tests.load.targets import Targets


def test_every_target_met_exits_0(capsys: pytest.CaptureFixture[str]) -> None:
    targets = Targets("bench_x")
    assert targets.check("p99 < 5 ms", passed=True) == "PASS"
    assert targets.exit_status() == 0
    assert "bench_x: all 1 targets met" in capsys.readouterr().out


def test_a_missed_target_is_named_and_exits_1(capsys: pytest.CaptureFixture[str]) -> None:
    targets = Targets("bench_x")
    assert targets.check("p99 < 5 ms", passed=True) == "PASS"
    assert targets.check("ratio >= 0.8x", passed=False) == "FAIL"
    assert targets.exit_status() == 1
    out = capsys.readouterr().out
    assert "bench_x: MISSED 1 of 2 targets:" in out
    assert "  - ratio >= 0.8x" in out
    assert "p99 < 5 ms" not in out.split("MISSED", 1)[1]
