"""The generated Rego decides exactly like the reference evaluator: random policies, random
requests, both sides evaluated (regorus against the rule model's meaning)."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from domain.constitution import DEFAULT_CONSTITUTIONAL_HASH
from domain.policy.gate import run_gate
from domain.policy.gate_inputs import gate_inputs
from domain.policy.reference_evaluator import evaluate
from domain.policy.rego_generator import generate_rego, package_name
from domain.policy.rule_model import Policy
from infra.rego.regorus_engine import RegorusEngine
from tests.unit.policy.strategies import policies, requests

pytestmark = pytest.mark.rego
ENGINE = RegorusEngine()


@settings(max_examples=500, deadline=None)
@given(policy=policies(), batch=st.lists(requests(), min_size=1, max_size=8))
def test_rego_allow_deny_and_obligations_equal_the_reference_on_random_requests(
    policy: Policy, batch: list[dict[str, Any]]
) -> None:
    module = generate_rego(policy)
    actual = ENGINE.decisions("p.rego", module, package_name(policy.policy_id), batch)
    expected = [evaluate(policy, request, DEFAULT_CONSTITUTIONAL_HASH) for request in batch]
    assert actual == expected


@settings(max_examples=500, deadline=None)
@given(policy=policies())
def test_the_gate_passes_every_correctly_generated_policy_and_reaches_its_rules(
    policy: Policy,
) -> None:
    verdict = run_gate(
        policy,
        ENGINE,
        filename="p.rego",
        module=generate_rego(policy),
        package=package_name(policy.policy_id),
        constitutional_hash=DEFAULT_CONSTITUTIONAL_HASH,
    )
    assert verdict.passed, verdict
    assert verdict.guard_verified
    reached = gate_inputs(policy, DEFAULT_CONSTITUTIONAL_HASH)
    assert verdict.requests_evaluated == len(reached.requests)
