"""The compile-and-prove gate: the Rego engine port and the differential check against the
reference evaluator. A policy passes only when the Rego's `allow`, `deny` and `obligations`
equal the reference on every generated request."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from domain.errors import DomainError
from domain.policy.gate_inputs import DEFAULT_MAX_INPUTS, gate_inputs
from domain.policy.reference_evaluator import Decision, evaluate_all
from domain.policy.rule_model import Policy
from domain.policy.work_budget import NO_DEADLINE, Deadline


class RegoCompileError(DomainError):
    """The engine refused the module; line and column are inside the generated Rego."""

    code = "REGO_COMPILE_ERROR"

    def __init__(self, message: str, line: int = 0, column: int = 0) -> None:
        super().__init__(message, {"line": line, "column": column})
        self.line = line
        self.column = column


class RegoEvaluationError(DomainError):
    """The module compiled but failed while evaluated (unknown function, type error)."""

    code = "REGO_EVALUATION_ERROR"


class RegoEngine(Protocol):
    """Port: compiles one module and evaluates it on many requests."""

    name: str

    def decisions(
        self, filename: str, module: str, package: str, requests: Sequence[dict[str, Any]]
    ) -> list[Decision]:
        """The decision of `data.<package>` for each request, in order.

        Raises RegoCompileError or RegoEvaluationError.
        """
        ...


@dataclass(frozen=True, slots=True)
class Counterexample:
    request: dict[str, Any]
    expected: Decision
    actual: Decision

    def as_json(self) -> dict[str, Any]:
        return {
            "request": self.request,
            "expected": self.expected.as_json(),
            "rego": self.actual.as_json(),
        }


@dataclass(frozen=True, slots=True)
class GateVerdict:
    requests_evaluated: int
    counterexample: Counterexample | None = None
    engine_error: RegoCompileError | RegoEvaluationError | None = None
    unreached_rules: tuple[str, ...] = ()
    never_applicable_rules: tuple[str, ...] = ()
    uncovered_branches: tuple[str, ...] = ()
    guard_verified: bool = False
    inputs_capped: bool = False

    @property
    def passed(self) -> bool:
        return self.counterexample is None and self.engine_error is None


def first_disagreement(
    policy: Policy,
    requests: Sequence[dict[str, Any]],
    actual: Sequence[Decision],
    constitutional_hash: str,
) -> Counterexample | None:
    expected_all = evaluate_all(policy, requests, constitutional_hash)
    for request, decision, expected in zip(requests, actual, expected_all, strict=True):
        if expected != decision:
            return Counterexample(request, expected, decision)
    return None


def run_gate(
    policy: Policy,
    engine: RegoEngine,
    *,
    filename: str,
    module: str,
    package: str,
    constitutional_hash: str,
    max_inputs: int = DEFAULT_MAX_INPUTS,
    deadline: Deadline = NO_DEADLINE,
) -> GateVerdict:
    """Raises ConversionBudgetExceeded when the deadline passes before the verdict."""
    inputs = gate_inputs(policy, constitutional_hash, max_inputs=max_inputs, deadline=deadline)
    requests = list(inputs.requests)
    try:
        actual = engine.decisions(filename, module, package, requests)
    except (RegoCompileError, RegoEvaluationError) as failure:
        return GateVerdict(len(requests), engine_error=failure)
    deadline.check("the gate's evaluation")
    counterexample = first_disagreement(policy, requests, actual, constitutional_hash)
    guard_verified = counterexample is None and any(
        request.get("constitutional_hash") != constitutional_hash for request in requests
    )
    return GateVerdict(
        len(requests),
        counterexample,
        None,
        inputs.unreached_rules,
        inputs.never_applicable_rules,
        inputs.uncovered_branches,
        guard_verified,
        inputs.capped,
    )
