"""Rego evaluation is bounded: one module cannot hold a worker past its time budget or grow past
its memory cap (the engine runs in a child process of its own); the engine takes the modules the
bounded sources produce."""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from api.cli.main import cli
from domain.policy.conversion import ConversionSettings, ConversionStatus, convert_parsed
from domain.policy.gate import RegoEngine, RegoEvaluationError
from domain.policy.rule_model import Policy
from domain.policy.sources import parse_source
from infra.rego import bounded_engine
from infra.rego.bounded_engine import BoundedRegoEngine
from infra.rego.regorus_engine import RegorusEngine
from tests.integration.policy.test_rego_gate import RegoEngineContract

pytestmark = pytest.mark.rego

TAIL = "\n\ndeny := set()\n\nobligations := set()\n"
GOOD = (
    "package t\n\ndefault allow := false\n\nallow if input.a == 1\n\n"
    'deny := {"x"}\n\nobligations := set()\n'
)
# 25 million iterations over two small ranges: CPU for many seconds, little memory.
SPINS = (
    "package t\n\ndefault allow := false\n\n"
    "allow if count({[x, y] | some x in numbers.range(1, 5000); some y in numbers.range(1, 5000);"
    " x == y + 7000}) > 0" + TAIL
)
# An array of 10^8 numbers: gigabytes.
GROWS = (
    "package t\n\ndefault allow := false\n\n"
    "allow if count([x | some x in numbers.range(1, 100000000)]) > 0" + TAIL
)


class TestBoundedRegoEngine(RegoEngineContract):
    def engine(self) -> RegoEngine:
        return BoundedRegoEngine()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"  # a zombie is gone


def test_a_module_over_its_time_budget_fails_and_the_next_one_runs() -> None:
    with BoundedRegoEngine(seconds=1) as engine:
        assert engine.decisions("t.rego", GOOD, "t", [{"a": 1}])[0].allow
        first_child = engine._child
        assert first_child is not None
        started = time.monotonic()
        with pytest.raises(RegoEvaluationError) as stopped:
            engine.decisions("spin.rego", SPINS, "t", [{}])
        assert time.monotonic() - started < 30  # the budget, not the module, ended the call
        assert stopped.value.message == (
            "evaluation of spin.rego stopped after 1 s, its time budget (limit evaluation_seconds)"
        )
        assert not _alive(first_child.pid)
        assert engine.decisions("t.rego", GOOD, "t", [{"a": 2}])[0].allow is False


def test_a_slow_start_of_the_engine_is_not_counted_against_the_budget(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A busy machine may take longer than the budget to start the child: the budget counts
    from the call, so a good module still gets its decision."""
    slow = "import time; time.sleep(2); from infra.rego.bounded_engine import serve; serve()"
    monkeypatch.setattr(bounded_engine, "_CHILD", slow)
    with BoundedRegoEngine(seconds=1) as engine:
        assert engine.decisions("t.rego", GOOD, "t", [{"a": 1}])[0].allow


def test_an_engine_that_does_not_start_fails_the_call_in_plain_words(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(bounded_engine, "_CHILD", "import sys; sys.exit(3)")
    with BoundedRegoEngine(seconds=1) as engine, pytest.raises(RegoEvaluationError) as failed:
        engine.decisions("t.rego", GOOD, "t", [{"a": 1}])
    assert failed.value.message == "the Rego engine did not start (exit status 3)"
    assert engine._child is None  # the next call starts afresh


def test_a_module_over_its_memory_cap_fails_in_the_toolkits_words() -> None:
    with BoundedRegoEngine(seconds=120, memory_bytes=256 * 1024 * 1024) as engine:
        with pytest.raises(RegoEvaluationError) as stopped:
            engine.decisions("grow.rego", GROWS, "t", [{}])
        assert stopped.value.message == (
            "evaluation of grow.rego stopped: the engine ran out of its 256 MiB "
            "(limit evaluation_memory_bytes)"
        )
        assert engine.decisions("t.rego", GOOD, "t", [{"a": 1}])[0].allow


def test_an_engine_killed_mid_evaluation_is_reported_and_replaced() -> None:
    with BoundedRegoEngine(seconds=60) as engine:
        assert engine.decisions("t.rego", GOOD, "t", [{"a": 1}])[0].allow
        child = engine._child
        assert child is not None
        killer = threading.Timer(0.5, os.kill, (child.pid, signal.SIGKILL))  # its own child
        killer.start()
        try:
            with pytest.raises(RegoEvaluationError) as stopped:
                engine.decisions("spin.rego", SPINS, "t", [{}])
        finally:
            killer.join()
        assert stopped.value.message == (
            "evaluation of spin.rego stopped: the engine ended unexpectedly (exit status -9)"
        )
        assert engine.decisions("t.rego", GOOD, "t", [{"a": 1}])[0].allow


def test_closing_the_engine_ends_its_process() -> None:
    engine = BoundedRegoEngine()
    engine.decisions("t.rego", GOOD, "t", [{"a": 1}])
    assert engine._child is not None
    pid = engine._child.pid
    assert _alive(pid)
    engine.close()
    assert not _alive(pid)


def test_policy_check_fails_a_module_that_spins_and_goes_on(tmp_path: Path) -> None:
    (tmp_path / "spin.rego").write_text(SPINS, encoding="utf-8")
    result = CliRunner(env={"COLUMNS": "200"}).invoke(
        cli, ["policy", "check", str(tmp_path), "--limit", "evaluation_seconds=1"]
    )
    assert result.exit_code == 1, result.output
    assert "evaluation of spin.rego stopped after 1 s, its time budget" in result.output
    assert "1 modules checked, 1 failed." in result.output


@pytest.mark.parametrize(
    "engine", [RegorusEngine(), BoundedRegoEngine()], ids=["direct", "bounded"]
)
def test_an_in_list_at_the_bound_converts(engine: RegoEngine) -> None:
    """regorus's own default refuses lines over 1,024 columns: a 10,000-value list is one line."""
    values = ", ".join(f'"value-{index}"' for index in range(10_000))
    [policy] = parse_source(
        "list.rules", f"POLICY p\nRULE r WHEN action IN [{values}] THEN ALLOW\n"
    )
    assert isinstance(policy, Policy)
    result = convert_parsed(policy, engine, "list.rules", ConversionSettings())
    assert result.status is ConversionStatus.CONVERTED, result.errors
