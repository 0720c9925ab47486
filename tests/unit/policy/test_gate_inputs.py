"""The gate's generated requests: every rule reached, every comparison both ways with its
boundaries, every path absent, null and of each JSON type; bounded in number and in time."""

from __future__ import annotations

import json
import random
import re
from pathlib import Path
from typing import Any

import pytest
import re2
from hypothesis import given, settings

from domain.constitution import DEFAULT_CONSTITUTIONAL_HASH
from domain.policy.analysis import analyse
from domain.policy.diagnostics import Severity
from domain.policy.gate_inputs import GateInputs, gate_inputs, request_json
from domain.policy.iam_format import wildcard_pattern
from domain.policy.pattern_witnesses import matching_strings, non_matching_strings
from domain.policy.reference_evaluator import ABSENT, condition_holds, lookup
from domain.policy.rule_model import Policy
from domain.policy.sources import parse_source
from domain.policy.work_budget import ConversionBudgetExceeded, Deadline
from tests.load.policy_corpus import iam_text
from tests.unit.policy.strategies import policies

HASH = DEFAULT_CONSTITUTIONAL_HASH
SAMPLES = Path(__file__).resolve().parents[2] / "data" / "legacy_samples"


def _policy(name: str, text: str) -> Policy:
    [parsed] = parse_source(name, text)
    assert isinstance(parsed, Policy), parsed
    return parsed


def _inputs(text: str, **options: Any) -> tuple[Policy, GateInputs]:
    policy = _policy("p.rules", text)
    return policy, gate_inputs(policy, HASH, **options)


def _values(inputs: GateInputs, path: str) -> list[Any]:
    return [lookup(request, path) for request in inputs.requests]


@pytest.mark.parametrize(
    "pattern",
    [
        wildcard_pattern("arn:acme:dataset/*"),
        wildcard_pattern("re?d"),
        wildcard_pattern("s3:Put?bject"),
        wildcard_pattern("*@acme.com"),
        wildcard_pattern("a*b?c*"),
        "^[0-9]+$",
        "x|y",
        "(?i)AB",
        r"^\d{3}-[A-Z]{2}$",
        "[^a-z]+",
        r"\pL+",
        "(?P<x>ab)+c?$",
        "[[:alpha:]]{2}",
        r"\Qa.b\E",
        "a{2,}b",
        "b$",
    ],
)
def test_patterns_get_strings_that_match_and_strings_that_do_not_confirmed_by_re2(
    pattern: str,
) -> None:
    compiled = re2.compile(pattern)
    matching = matching_strings(pattern)
    assert matching
    assert all(compiled.search(text) for text in matching)
    assert all(not compiled.search(text) for text in non_matching_strings(pattern))
    assert non_matching_strings(pattern)


def test_glob_probes_are_the_near_misses_a_user_would_try() -> None:
    read = wildcard_pattern("re?d")
    assert any(re.fullmatch("re.d", text) for text in matching_strings(read))
    assert {"rea", "ead"} & set(non_matching_strings(read))
    dataset = wildcard_pattern("arn:acme:dataset/*")
    assert "arn:acme:dataset/" in matching_strings(dataset)
    assert "arn:acme:dataset" in non_matching_strings(dataset)


def test_a_pattern_that_matches_every_string_has_no_string_miss() -> None:
    assert non_matching_strings(wildcard_pattern("*")) == ()


def _reached(policy: Policy, inputs: GateInputs) -> set[str]:
    return {
        rule.id
        for rule in policy.rules
        for request in inputs.requests
        if request.get("constitutional_hash") == HASH and condition_holds(rule.when, request)
    }


def _sample_policies() -> list[Policy]:
    found: list[Policy] = []
    for path in sorted(SAMPLES.iterdir()):
        if path.suffix not in (".json", ".yaml", ".yml", ".rules"):
            continue
        for parsed in parse_source(str(path), path.read_text(encoding="utf-8")):
            errors = isinstance(parsed, Policy) and any(
                item.severity is Severity.ERROR for item in analyse(parsed)
            )
            if isinstance(parsed, Policy) and not errors:
                found.append(parsed)
    return found


def test_every_rule_of_every_sample_is_reached_except_the_one_the_gate_cannot_prove() -> None:
    unreached: dict[str, tuple[str, ...]] = {}
    for policy in _sample_policies():
        inputs = gate_inputs(policy, HASH)
        assert _reached(policy, inputs) | set(inputs.never_applicable_rules) | set(
            inputs.unreached_rules
        ) == {rule.id for rule in policy.rules}
        if inputs.unreached_rules:
            unreached[policy.policy_id] = inputs.unreached_rules
    assert unreached == {"mail-routing": ("acme-admins",)}


def test_every_statement_of_a_generated_iam_corpus_is_reached() -> None:
    statements = 0
    for index in range(150):
        text = iam_text(random.Random(index), f"iam-{index}")
        policy = _policy(f"iam-{index}.json", text)
        inputs = gate_inputs(policy, HASH)
        assert inputs.unreached_rules == (), (text, inputs.unreached_rules)
        reachable = {rule.id for rule in policy.rules} - set(inputs.never_applicable_rules)
        assert _reached(policy, inputs) >= reachable
        statements += len(reachable)
    assert statements > 1000


def test_every_path_read_is_absent_null_and_of_every_json_type_in_some_request() -> None:
    _, inputs = _inputs(
        'POLICY p RULE a WHEN user.n > 5 AND action == "read" THEN ALLOW '
        'RULE b WHEN resource.tags CONTAINS "pii" THEN DENY'
    )
    for path in ("user.n", "action", "resource.tags"):
        kinds = {_kind(value) for value in _values(inputs, path)}
        assert kinds >= {"absent", "null", "boolean", "number", "string", "array", "object"}, path


def _kind(value: Any) -> str:
    if value is ABSENT:
        return "absent"
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    return {str: "string", list: "array", dict: "object"}[type(value)]


@pytest.mark.parametrize(
    ("condition", "path", "expected"),
    [
        ("user.n > 5", "user.n", [5, 5.5]),  # at the boundary (false), just above (true)
        ("user.n >= 5", "user.n", [5, 4.5]),
        ("user.n < 5", "user.n", [5, 4.5]),
        ("user.n <= 5", "user.n", [5, 5.5]),
        ('user.s > "m"', "user.s", ["m", "m "]),
        ('user.id STARTS WITH "doc-"', "user.id", ["doc-", "doc"]),
        ('user.id ENDS WITH ".pdf"', "user.id", [".pdf", "pdf"]),
        ('action IN ["read", "list"]', "action", ["read", "~none"]),
        ('action NOT IN ["read", "list"]', "action", ["read", "~none"]),
        ("user.level == 3", "user.level", [3, "3"]),
        ('user.level == "3"', "user.level", ["3", 3]),
        ("context.mfa == true", "context.mfa", [True, 1]),
        ('user.role != "admin"', "user.role", ["admin", ABSENT]),
        ('resource.tags CONTAINS "pii"', "resource.tags", [["pii"], ["pii~x"]]),
        ('user.mail MATCHES "^[a-z]+@acme\\\\.com$"', "user.mail", ["a@acme.com"]),
    ],
)
def test_each_comparison_is_probed_at_its_boundaries(
    condition: str, path: str, expected: list[Any]
) -> None:
    _, inputs = _inputs(f"POLICY p RULE r WHEN {condition} THEN ALLOW")
    values = _values(inputs, path)
    for value in expected:
        assert any(_same(value, seen) for seen in values), (value, values)


def _same(one: Any, other: Any) -> bool:
    if one is ABSENT or other is ABSENT:
        return one is other
    return type(one) is type(other) and one == other


def test_a_witness_is_found_when_two_comparisons_on_one_field_must_agree() -> None:
    policy, inputs = _inputs(
        'POLICY p RULE r WHEN action IN ["list", "browse"] AND action MATCHES "^b" '
        'AND NOT action == "list" THEN ALLOW'
    )
    assert inputs.unreached_rules == ()
    assert _reached(policy, inputs) == {"r"}


def test_a_rule_the_analysis_proves_never_applicable_is_not_unreached() -> None:
    _, inputs = _inputs(
        'POLICY p RULE never WHEN resource.id STARTS WITH "doc-" AND resource.id STARTS WITH '
        '"rec-" THEN DENY RULE fine WHEN user.a EXISTS THEN ALLOW'
    )
    assert inputs.never_applicable_rules == ("never",)
    assert inputs.unreached_rules == ()


def test_an_unsatisfied_comparison_is_listed_once_with_every_rule_holding_it() -> None:
    _, inputs = _inputs(
        'POLICY p RULE r1 WHEN user.a MATCHES "a{300}" THEN ALLOW '
        'RULE r2 WHEN user.a MATCHES "a{300}" THEN DENY'
    )
    assert inputs.unreached_rules == ("r1", "r2")
    assert inputs.uncovered_branches == ('user.a matches "a{300}" never true (rule r1, r2)',)


def test_the_number_of_inputs_is_capped_and_what_was_cut_is_reported() -> None:
    text = "POLICY p " + " ".join(
        f'RULE r{i} WHEN user.role == "role-{i}" THEN ALLOW' for i in range(10)
    )
    _, full = _inputs(text)
    assert not full.capped
    assert len(full.requests) > 12
    _, capped = _inputs(text, max_inputs=6)
    assert capped.capped
    assert len(capped.requests) == 6
    assert capped.unreached_rules == tuple(f"r{i}" for i in range(3, 10))


def test_input_generation_stops_at_the_deadline() -> None:
    ticks = iter(range(1000))
    deadline = Deadline.after(2.5, lambda: float(next(ticks)))
    with pytest.raises(ConversionBudgetExceeded) as raised:
        _inputs(
            "POLICY p " + " ".join(f"RULE r{i} WHEN user.n > {i} THEN ALLOW" for i in range(10)),
            deadline=deadline,
        )
    assert raised.value.code == "CONVERSION_TIME_BUDGET_EXCEEDED"
    assert "2.5 s" in raised.value.message


def test_requests_are_json_documents() -> None:
    _, inputs = _inputs('POLICY p RULE r WHEN user.a MATCHES "^x" AND user.n < 2 THEN ALLOW')
    for request in inputs.requests:
        assert json.loads(json.dumps(request)) == request


def test_the_json_text_sent_for_each_request_is_that_request() -> None:
    _, inputs = _inputs(
        'POLICY p RULE r WHEN user.a MATCHES "^x" AND user.n < 2 THEN ALLOW '
        'RULE d WHEN NOT action IN ["read", "list"] AND resource.tags CONTAINS "pii" THEN DENY'
    )
    texts = [request_json(request) for request in inputs.requests]
    assert [json.loads(text) for text in texts] == list(inputs.requests)
    assert len(set(texts)) == len(texts)  # duplicates were dropped
    assert request_json({"b": [1], "a": None}) == json.dumps({"b": [1], "a": None})


def test_a_policy_with_a_non_finite_number_keeps_its_requests_apart_from_null_ones() -> None:
    # 1e999 reads as infinity: msgspec would write it as null, the text of another request, so
    # such a policy's requests are told apart (and sent) by the json module's text.
    _, inputs = _inputs("POLICY p RULE r WHEN user.n < 1e999 AND user.m == 1 THEN ALLOW")
    texts = [request_json(request) for request in inputs.requests]
    assert texts == [json.dumps(request, sort_keys=True) for request in inputs.requests]
    assert any("Infinity" in text for text in texts)
    assert len(set(texts)) == len(texts)
    finite = _inputs("POLICY p RULE r WHEN user.n < 1e300 AND user.m == 1 THEN ALLOW")[1]
    assert [json.loads(request_json(request)) for request in finite.requests] == list(
        finite.requests
    )


def test_a_not_action_that_excludes_every_string_is_proven_never_applicable() -> None:
    document = {
        "Version": "2012-10-17",
        "Statement": [
            {"Sid": "Never", "Effect": "Allow", "NotAction": ["docs:Get*", "*"]},
            {"Sid": "Reads", "Effect": "Allow", "Action": "docs:Get*"},
        ],
    }
    policy = _policy("iam.json", json.dumps(document))
    inputs = gate_inputs(policy, HASH)
    assert inputs.never_applicable_rules == ("Never",)
    assert inputs.unreached_rules == ()


@settings(max_examples=300, deadline=None)
@given(policy=policies())
def test_a_rule_is_reported_unreached_exactly_when_no_request_makes_it_applicable(
    policy: Policy,
) -> None:
    inputs = gate_inputs(policy, HASH)
    reached = _reached(policy, inputs)
    for rule in policy.rules:
        if rule.id in inputs.never_applicable_rules:
            assert rule.id not in reached
        else:
            assert (rule.id in reached) is (rule.id not in inputs.unreached_rules)
