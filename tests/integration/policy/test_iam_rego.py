"""IAM-style documents through the whole converter with the real engine: the Rego equals the
reference on documents with NotAction/NotResource and wildcards and on requests with missing or
mistyped fields (on the interpreter and as decisions are served); no NotAction/NotResource
statement grants a request without action or resource.id; every statement of the samples and
of a generated IAM corpus is reached."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from commands.policy_conversion import SourceText, collect_sources, read_sources, run_conversion
from domain.constitution import DEFAULT_CONSTITUTIONAL_HASH as HASH
from domain.policy.conversion import ConversionSettings, ConversionStatus, convert_policy
from domain.policy.reference_evaluator import evaluate
from domain.policy.rego_generator import generate_rego, package_name
from domain.policy.rule_model import Policy
from domain.policy.sources import SourceFormat, parse_source
from infra.rego.engine_cache import EngineCache
from infra.rego.regorus_engine import RegorusEngine
from tests.load.policy_corpus import iam_text
from tests.unit.policy.strategies import iam_documents, iam_requests

pytestmark = pytest.mark.rego
ENGINE = RegorusEngine()
SAMPLES = Path(__file__).resolve().parents[2] / "data" / "legacy_samples"


def _iam(document: dict[str, Any]) -> Policy:
    [policy] = parse_source("iam.json", json.dumps(document), SourceFormat.IAM)
    assert isinstance(policy, Policy), policy
    return policy


@settings(max_examples=300, deadline=None)
@given(document=iam_documents(), batch=st.lists(iam_requests(), min_size=1, max_size=10))
def test_iam_rego_equals_the_reference_on_missing_and_mistyped_fields(
    document: dict[str, Any], batch: list[dict[str, Any]]
) -> None:
    policy = _iam(document)
    module, package = generate_rego(policy), package_name(policy.policy_id)
    expected = [evaluate(policy, request, HASH) for request in batch]
    assert ENGINE.decisions("iam.rego", module, package, batch) == expected
    served = EngineCache()  # as decisions are served: on the compiled machine when it suits
    answers = [served.evaluate(("p", 1), module, package, r, generated=True) for r in batch]
    assert answers == expected
    assert served.machine_failures == 0


@settings(max_examples=100, deadline=None)
@given(document=iam_documents())
def test_every_generated_iam_document_converts_with_every_statement_reached(
    document: dict[str, Any],
) -> None:
    result = convert_policy(_iam(document), ENGINE, "iam.json", ConversionSettings())
    assert result.status is ConversionStatus.CONVERTED, result.gate
    assert result.gate["rules_reached"] == result.gate["rules_reachable"]


ALLOW_BUT = {
    "Version": "2012-10-17",
    "Id": "allow-but",
    "Statement": [
        {"Sid": "AllButDelete", "Effect": "Allow", "NotAction": "docs:Delete*", "Resource": "*"},
        {"Sid": "AllButSecret", "Effect": "Allow", "Action": "*", "NotResource": "arn:secret/*"},
        {"Sid": "Anything", "Effect": "Allow", "NotAction": "x", "NotResource": "y"},
    ],
}


@pytest.mark.parametrize(
    "request_without",
    [
        {"resource": {"id": "arn:public/1"}},  # no action
        {"action": None, "resource": {"id": "arn:public/1"}},
        {"action": 7, "resource": {"id": "arn:public/1"}},
        {"action": ["docs:Read"], "resource": {"id": "arn:public/1"}},
        {"action": "docs:Read"},  # no resource at all
        {"action": "docs:Read", "resource": {}},  # no resource.id
        {"action": "docs:Read", "resource": {"id": None}},
        {"action": "docs:Read", "resource": {"id": 3}},
        {"action": "docs:Read", "resource": "arn:public/1"},
        {},
    ],
)
def test_not_action_and_not_resource_never_grant_a_request_without_them(
    request_without: dict[str, Any],
) -> None:
    policy = _iam(ALLOW_BUT)
    result = convert_policy(policy, ENGINE, "allow-but.json", ConversionSettings())
    assert result.status is ConversionStatus.CONVERTED
    assert result.rego is not None
    request = {**request_without, "constitutional_hash": HASH}
    [decision] = ENGINE.decisions("a.rego", result.rego, result.package or "", [request])
    assert decision.allow is False
    [present] = ENGINE.decisions(
        "a.rego",
        result.rego,
        result.package or "",
        [{"action": "docs:Read", "resource": {"id": "arn:public/1"}, "constitutional_hash": HASH}],
    )
    assert present.allow is True


def test_no_sample_or_generated_iam_policy_with_an_unreached_rule_is_converted() -> None:
    sources = read_sources(collect_sources([SAMPLES], SourceFormat.AUTO))
    sources += [
        SourceText(f"iam-{n}.json", iam_text(random.Random(1000 + n), f"iam-{n}"))
        for n in range(60)
    ]
    results = run_conversion(sources, RegorusEngine, jobs=1)
    converted = [result for result in results if result.status is ConversionStatus.CONVERTED]
    assert len(converted) > 90
    for result in converted:
        assert result.gate["unreached_rules"] == []
        assert result.gate["rules_reached"] == result.gate["rules_reachable"]
    unproven = [result for result in results if result.status is ConversionStatus.UNPROVEN]
    assert [(result.policy_id, result.gate["unreached_rules"]) for result in unproven] == [
        ("mail-routing", ["acme-admins"])
    ]
