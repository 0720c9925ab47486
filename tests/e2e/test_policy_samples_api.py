"""The toolkit's samples (tests/data/legacy_samples) submitted through the API as a user would,
activated, and decided on the gate's generated requests: every decision of the service equals
the reference evaluator's. A sample with a policy that does not convert is refused as a whole,
naming that policy, with the line and column."""

from __future__ import annotations

import tomllib
from collections.abc import Iterator
from typing import Any
from uuid import UUID

import httpx
import pytest

from domain.maci import MaciRole
from domain.policy.gate_inputs import gate_inputs
from domain.policy.json_values import canonical_text
from domain.policy.reference_evaluator import Decision, evaluate
from domain.policy.rule_model import Policy
from domain.policy.sources import parse_source
from tests.e2e.policy_support import SAMPLES, activate, decide_batch, submit
from tests.peers.http import HASH, Api

pytestmark = [pytest.mark.e2e, pytest.mark.postgres]

EXPECTED: dict[str, dict[str, str]] = tomllib.loads(
    (SAMPLES / "expectations.toml").read_text(encoding="utf-8")
)


@pytest.fixture(scope="module")
def author(api: Api) -> Iterator[tuple[httpx.Client, UUID]]:
    with api.client(api.token(MaciRole.EXECUTIVE)) as platform:
        slug = f"samples-{UUID(int=len(EXPECTED) + 7).hex[-8:]}-{id(api) % 10_000}"
        tenant = UUID(api.create_tenant(platform, slug)["tenant_id"])
    with api.client(api.token(MaciRole.LEGISLATIVE, tenant_id=tenant)) as client:
        yield client, tenant


def _served(result: dict[str, Any]) -> Decision:
    return Decision(
        allow=result["allow"],
        deny=frozenset(result["deny"]),
        obligations=frozenset(canonical_text(item) for item in result["obligations"]),
    )


@pytest.mark.parametrize("sample", sorted(EXPECTED))
def test_a_sample_through_the_api_decides_like_the_reference_evaluator(
    author: tuple[httpx.Client, UUID], sample: str
) -> None:
    client, tenant = author
    text = (SAMPLES / sample).read_text(encoding="utf-8")
    response = submit(client, tenant, text, filename=sample)
    expected = EXPECTED[sample]
    failed = sorted(k for k, status in expected.items() if status == "failed")
    if failed:
        assert response.status_code == 422, response.text
        error = response.json()["error"]
        assert error["code"] == "POLICY_CONVERSION_FAILED"
        named = {e["policy_id"] for e in error["details"]["errors"]}
        assert {k for k in failed if "#" not in k} <= named
        assert error["details"]["line"] is not None
        return
    assert response.status_code == 201, response.text
    body = response.json()
    versions = {p["policy_id"]: p["version"] for p in body["policies"]}
    assert sorted(versions) == sorted(expected)
    assert {p["policy_id"]: p["conversion_status"] for p in body["policies"]} == expected
    policies = [p for p in parse_source(sample, text) if isinstance(p, Policy)]
    assert sorted(p.policy_id for p in policies) == sorted(expected)
    for policy in policies:
        activated = activate(client, tenant, policy.policy_id, versions[policy.policy_id])
        assert activated.status_code == 200, activated.text
        requests = list(gate_inputs(policy, HASH).requests)
        assert requests
        for start in range(0, len(requests), 1000):
            chunk = requests[start : start + 1000]
            answer = decide_batch(client, tenant, [(policy.policy_id, r) for r in chunk])
            assert answer.status_code == 200, answer.text
            results = answer.json()["results"]
            for request, result in zip(chunk, results, strict=True):
                assert result["policy_version"] == versions[policy.policy_id]
                assert _served(result) == evaluate(policy, request, HASH), request
