"""The generated Rego decides exactly like the reference evaluator: random policies, random
requests, both sides evaluated (regorus against the rule model's meaning), on the interpreter
the gate runs and on the compiled machine decisions are served on."""

from __future__ import annotations

from pathlib import Path
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
from domain.policy.sources import parse_source
from infra.rego.engine_cache import EngineCache
from infra.rego.regorus_engine import RegorusEngine
from tests.unit.policy.strategies import policies, requests

pytestmark = pytest.mark.rego
ENGINE = RegorusEngine()
SAMPLES = Path(__file__).resolve().parents[2] / "data" / "legacy_samples"


@settings(max_examples=500, deadline=None)
@given(policy=policies(), batch=st.lists(requests(), min_size=1, max_size=8))
def test_rego_allow_deny_and_obligations_equal_the_reference_on_random_requests(
    policy: Policy, batch: list[dict[str, Any]]
) -> None:
    """On the interpreter (as the gate evaluates) and as decisions are served (the compiled
    machine, or the interpreter for a module the machine would get wrong)."""
    module, package = generate_rego(policy), package_name(policy.policy_id)
    expected = [evaluate(policy, request, DEFAULT_CONSTITUTIONAL_HASH) for request in batch]
    assert ENGINE.decisions("p.rego", module, package, batch) == expected
    cache = EngineCache()
    served = [cache.evaluate(("p", 1), module, package, r, generated=True) for r in batch]
    assert served == expected
    assert (cache.compiled, cache.machine_failures) == (1, 0)
    assert cache.machines == ("not _ = " not in module)


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


def test_every_sample_policy_is_served_as_the_reference_decides_its_gate_requests() -> None:
    on_machine = 0
    for sample in sorted(SAMPLES.glob("*_[01][0-9]_*")):  # 20 and over: deliberately broken
        for policy in parse_source(sample.name, sample.read_text()):
            if not isinstance(policy, Policy):
                continue
            module, package = generate_rego(policy), package_name(policy.policy_id)
            cache = EngineCache()
            for request in gate_inputs(policy, DEFAULT_CONSTITUTIONAL_HASH).requests:
                served = cache.evaluate(("p", 1), module, package, request, generated=True)
                assert served == evaluate(policy, request, DEFAULT_CONSTITUTIONAL_HASH), sample
            assert cache.machine_failures == 0
            on_machine += cache.machines
    assert on_machine >= 30  # of 37: most samples have no field that must be absent
