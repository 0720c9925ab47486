"""The gate with the real engine: it refuses Rego that decides differently, reports compile
errors with line and column, and passes every remediation snippet of the gap catalogue."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest

from domain.constitution import DEFAULT_CONSTITUTIONAL_HASH
from domain.policy.conversion import ConversionSettings, ConversionStatus, convert_policy
from domain.policy.gaps.catalogue import CATALOGUE, GapRule
from domain.policy.gate import RegoCompileError, RegoEngine, RegoEvaluationError
from domain.policy.reference_evaluator import Decision
from domain.policy.rule_model import Policy
from domain.policy.sources import parse_source
from infra.rego.regorus_engine import RegorusEngine

pytestmark = pytest.mark.rego
HASH = DEFAULT_CONSTITUTIONAL_HASH


class TamperingEngine:
    """Regorus, but the module is edited first: a stand-in for a converter fault."""

    name = "tampering"

    def __init__(self, old: str, new: str) -> None:
        self.old, self.new = old, new

    def decisions(
        self, filename: str, module: str, package: str, requests: Sequence[dict[str, Any]]
    ) -> list[Decision]:
        assert self.old in module
        return RegorusEngine().decisions(
            filename, module.replace(self.old, self.new), package, requests
        )


def _policy(text: str) -> Policy:
    [parsed] = parse_source("p.rules", text)
    assert isinstance(parsed, Policy), parsed
    return parsed


POLICY = _policy(
    'POLICY p\nRULE r WHEN user.level != 3 AND action IN ["read"] THEN ALLOW OBLIGE audit\n'
    'RULE d WHEN user.level > 7 THEN DENY BECAUSE "too high"\n'
)


def test_a_faithful_conversion_is_converted_with_the_guard_verified() -> None:
    result = convert_policy(POLICY, RegorusEngine(), "p.rules", ConversionSettings())
    assert result.status is ConversionStatus.CONVERTED
    assert result.gate["passed"] is True
    assert result.constitutional_compliant is True


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("input.user.level != 3", "input.user.level == 3"),
        ('deny contains "too high" if {', 'deny contains "too low" if {'),
        ('final_decision == "allow"', 'final_decision == "deny"'),
        ('} else := "deny"\n\ndefault', '} else := "allow"\n\ndefault'),
    ],
)
def test_rego_that_decides_differently_is_failed_with_a_counterexample(old: str, new: str) -> None:
    result = convert_policy(POLICY, TamperingEngine(old, new), "p.rules", ConversionSettings())
    assert result.status is ConversionStatus.FAILED
    assert result.gate["counterexample"]["expected"] != result.gate["counterexample"]["rego"]
    assert result.errors[0].code == "GATE_MISMATCH"


def test_a_compile_error_is_reported_with_line_and_column_of_the_rego() -> None:
    engine = TamperingEngine("default allow := false", "default allow := ")
    result = convert_policy(POLICY, engine, "p.rules", ConversionSettings())
    assert result.status is ConversionStatus.FAILED
    [failure] = result.errors
    assert failure.code == "REGO_COMPILE_ERROR"
    assert failure.location is not None
    assert failure.location.line > 0
    assert failure.location.column > 0


class RegoEngineContract:
    """Every RegoEngine implementation must pass these."""

    def engine(self) -> RegoEngine:
        raise NotImplementedError

    def test_decisions_come_back_in_request_order(self) -> None:
        module = (
            "package t\n\ndefault allow := false\n\nallow if input.a == 1\n\n"
            'deny := {"x"}\n\nobligations := set()\n'
        )
        decisions = self.engine().decisions("t.rego", module, "t", [{"a": 1}, {"a": 2}])
        assert [decision.allow for decision in decisions] == [True, False]
        assert decisions[0].deny == {"x"}

    def test_syntax_errors_raise_a_compile_error_with_position(self) -> None:
        with pytest.raises(RegoCompileError) as raised:
            self.engine().decisions("t.rego", "package t\n\nallow if {\n", "t", [{}])
        assert raised.value.line >= 3

    def test_unknown_functions_surface_as_errors(self) -> None:
        module = "package t\n\nallow if nope.fn(input.a)\n\ndeny := set()\n\nobligations := set()\n"
        with pytest.raises((RegoCompileError, RegoEvaluationError)):
            self.engine().decisions("t.rego", module, "t", [{"a": 1}])

    def test_an_undefined_decision_is_an_evaluation_error(self) -> None:
        with pytest.raises(RegoEvaluationError):
            self.engine().decisions("t.rego", "package t\n\nallow := true\n", "t", [{}])


class TestRegorusEngine(RegoEngineContract):
    def engine(self) -> RegoEngine:
        return RegorusEngine()


@pytest.mark.parametrize("rule", CATALOGUE, ids=lambda rule: rule.id)
def test_every_remediation_snippet_passes_the_gate(rule: GapRule) -> None:
    result = convert_policy(
        _policy(rule.remediation_policy), RegorusEngine(), rule.id, ConversionSettings()
    )
    assert result.status is ConversionStatus.CONVERTED, result.errors
    assert result.gate["requests"] >= 3
