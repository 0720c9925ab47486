"""The embedded Rego engine: regorus (PyPI `gordon-to-regorus`, pinned), Rego v1."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import regorus

from domain.policy.gate import RegoCompileError, RegoEvaluationError
from domain.policy.gate_inputs import request_json
from domain.policy.json_values import canonical_text
from domain.policy.reference_evaluator import Decision
from infra.rego.engine_messages import compile_error_position, error_summary

# A second module with one rule giving the three results: evaluating a rule per request is
# cheaper in regorus than a query or a `with input as` comprehension (measured: ~30 %).
_GATE_MODULE = (
    "package acgs_gate\n\n"
    "result := [data.{package}.allow, data.{package}.deny, data.{package}.obligations]\n"
)
_GATE_RULE = "data.acgs_gate.result"

# regorus refuses, by default, modules over 1 MiB or with a line over 1,024 columns: a generated
# `in` list of a few hundred values is one longer line. The sources are bounded (PolicyLimits), and
# their Rego is a few times their size, so the engine takes modules up to these.
MAX_MODULE_BYTES = 64 * 1024 * 1024
MAX_MODULE_LINES = 4_000_000


class RegorusEngine:
    """Each call builds a fresh engine: modules never leak between policies."""

    name = "regorus"

    def decisions(
        self, filename: str, module: str, package: str, requests: Sequence[dict[str, Any]]
    ) -> list[Decision]:
        return self.decisions_of_texts(
            filename, module, package, [request_json(request) for request in requests]
        )

    def decisions_of_texts(
        self, filename: str, module: str, package: str, requests: Sequence[str]
    ) -> list[Decision]:
        """As `decisions`, each request given as its JSON text (what the engine reads)."""
        # The engine is unsendable (pyo3): it must be dropped on the thread that made it. An
        # error raised while a frame holds it would keep it alive in the traceback until another
        # thread's garbage collection, so errors are returned, the engine dropped, then raised.
        engine = regorus.Engine()
        outcome = _evaluate(engine, filename, module, package, requests)
        del engine
        if isinstance(outcome, Exception):
            raise outcome
        return outcome


def _evaluate(
    engine: Any, filename: str, module: str, package: str, requests: Sequence[str]
) -> list[Decision] | RegoCompileError | RegoEvaluationError:
    """The decision on every request, or the error to raise (returned, not raised)."""
    engine.set_policy_length_config(
        max_col=MAX_MODULE_BYTES, max_file_bytes=MAX_MODULE_BYTES, max_lines=MAX_MODULE_LINES
    )
    try:
        engine.add_policy(filename, module)
    except Exception as error:  # noqa: BLE001 - regorus raises bare exceptions, text is all
        line, column = compile_error_position(str(error))
        return RegoCompileError(error_summary(str(error)), line, column)
    engine.add_policy("acgs_gate.rego", _GATE_MODULE.format(package=package))
    # A policy answers its requests with few distinct results: each result text is read once.
    decided: dict[str, Decision] = {}
    decisions: list[Decision] = []
    for request in requests:
        engine.set_input_json(request)
        try:
            raw = engine.eval_rule_as_json(_GATE_RULE)
        except Exception as error:  # noqa: BLE001 - as above
            return RegoEvaluationError(error_summary(str(error)))
        decision = decided.get(raw)
        if decision is None:
            row = json.loads(raw)
            if not isinstance(row, list):
                return RegoEvaluationError(f"data.{package} is undefined on {request}")
            try:
                decision = decided[raw] = _decision(row)
            except RegoEvaluationError as failure:
                return failure
        decisions.append(decision)
    return decisions


def _decision(row: list[Any]) -> Decision:
    if len(row) != 3 or not isinstance(row[0], bool) or not isinstance(row[1], list):
        raise RegoEvaluationError(f"unexpected decision shape: {row!r}")
    allow, deny, obligations = row
    return Decision(
        allow=allow,
        deny=frozenset(str(reason) for reason in deny),
        obligations=frozenset(canonical_text(item) for item in obligations),
    )
