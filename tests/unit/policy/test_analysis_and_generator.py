"""Semantic analysis findings, and the shape of the generated Rego (naming, determinism)."""

from __future__ import annotations

import pytest

from domain.policy.analysis import analyse
from domain.policy.rego_generator import generate_rego, package_name
from domain.policy.rule_model import Policy
from domain.policy.sources import parse_source


def _policy(text: str) -> Policy:
    [parsed] = parse_source("p.rules", text)
    assert isinstance(parsed, Policy), parsed
    return parsed


def _codes(text: str) -> list[str]:
    return [finding.code for finding in analyse(_policy(text))]


def test_an_invalid_regular_expression_is_an_error_at_its_rule() -> None:
    [finding] = [
        f
        for f in analyse(_policy('POLICY p\nRULE r WHEN user.a MATCHES "a(b" THEN ALLOW'))
        if f.severity == "error"
    ]
    assert finding.code == "INVALID_REGEX"
    assert (finding.location.line, finding.rule_id) == (2, "r")  # type: ignore[union-attr]


def test_gt_against_a_list_is_a_type_mismatch() -> None:
    assert "TYPE_MISMATCH" in _codes("POLICY p RULE r WHEN user.a > [1, 2] THEN ALLOW")


def test_rules_after_an_unconditional_rule_are_unreachable_under_first_applicable() -> None:
    codes = _codes(
        "POLICY p COMBINE first-applicable RULE all THEN DENY "
        "RULE later WHEN user.a EXISTS THEN ALLOW"
    )
    assert "UNREACHABLE_RULE" in codes
    assert "DEFAULT_UNREACHABLE" in codes


def test_a_rule_with_the_condition_of_an_earlier_rule_is_shadowed() -> None:
    codes = _codes(
        "POLICY p COMBINE first-applicable RULE a WHEN user.a == 1 THEN DENY "
        "RULE b WHEN user.a == 1 THEN ALLOW"
    )
    assert "SHADOWED_RULE" in codes


def test_contradictory_conditions_are_reported() -> None:
    assert "CONTRADICTORY_CONDITION" in _codes(
        'POLICY p RULE r WHEN user.a == "x" AND user.a == "y" THEN ALLOW'
    )
    assert "CONTRADICTORY_CONDITION" in _codes(
        "POLICY p RULE r WHEN user.n > 5 AND user.n < 3 THEN ALLOW"
    )


def test_unknown_roots_and_unknown_obligations_are_warnings() -> None:
    codes = _codes("POLICY p RULE r WHEN subject.a EXISTS THEN ALLOW OBLIGE teleport")
    assert {"UNKNOWN_PATH", "UNKNOWN_OBLIGATION"} <= set(codes)


def test_package_segments_are_sanitised_and_prefixed_when_starting_with_a_digit() -> None:
    assert package_name("PII-Access.v2") == "acgs.policies.pii_access_v2"
    assert package_name("9lives") == "acgs.policies.p_9lives"
    assert package_name("x", tenant="Acme-EU") == "acgs.tenants.acme_eu.x"


def test_generation_is_deterministic_and_carries_the_configured_hash() -> None:
    policy = _policy('POLICY p RULE r WHEN user.a IN [1, "b"] THEN DENY BECAUSE "no" OBLIGE audit')
    first = generate_rego(policy, constitutional_hash="0123456789abcdef")
    assert first == generate_rego(policy, constitutional_hash="0123456789abcdef")
    assert 'constitutional_hash := "0123456789abcdef"' in first
    assert "default allow := false" in first
    assert 'deny contains "no" if input.user.a in [1, "b"]' in first
    assert first.endswith("\n")
    assert "\n\n\n" not in first


def test_an_unconverted_rule_leaves_a_manual_review_comment_in_the_rego() -> None:
    [policy] = parse_source(
        "p.json",
        '{"policy_id": "p", "rules": [{"id": "s", "effect": "allow",'
        ' "when": {"op": "script", "value": "x"}}]}',
    )
    assert isinstance(policy, Policy)
    rego = generate_rego(policy)
    assert "# MANUAL REVIEW: rule s (p.json:1:" in rego
    assert "obligations := set()" in rego


def test_unicode_classes_in_a_pattern_are_a_warning_and_a_non_string_pattern_a_mismatch() -> None:
    assert "REGEX_CHARACTER_CLASS" in _codes(
        r'POLICY p RULE r WHEN user.id MATCHES "^\\d+$" THEN ALLOW'
    )
    [parsed] = parse_source(
        "p.json",
        '{"policy_id": "p", "rules": [{"id": "r", "effect": "allow",'
        ' "when": {"field": "user.id", "op": "matches", "value": 5}}]}',
    )
    assert isinstance(parsed, Policy)
    assert "'user.id matches 5' needs a pattern string: it is always false" in [
        finding.message for finding in analyse(parsed) if finding.code == "TYPE_MISMATCH"
    ]


def test_ordering_against_an_object_names_its_type() -> None:
    [parsed] = parse_source(
        "p.json",
        '{"policy_id": "p", "rules": [{"id": "r", "effect": "allow",'
        ' "when": {"field": "user.a", "op": "gt", "value": {"n": 1}}}]}',
    )
    assert isinstance(parsed, Policy)
    assert """'user.a gt {"n":1}' compares against a object: it is always false""" in [
        finding.message for finding in analyse(parsed)
    ]


@pytest.mark.parametrize(
    ("condition", "contradictory"),
    [
        ('user.a == "x" AND user.a STARTS WITH "a"', True),  # the pinned value lacks the prefix
        ('user.a == 5 AND user.a STARTS WITH "a"', True),  # a number has no prefix
        ('user.a == "abc" AND user.a STARTS WITH "a"', False),
        ('user.a == "abc" AND user.a ENDS WITH "bc"', False),
        ('user.b EXISTS AND (user.a == "x" AND user.a == "y")', True),  # within a conjunction
    ],
)
def test_a_pinned_value_the_other_comparisons_refuse_is_contradictory(
    condition: str, contradictory: bool
) -> None:
    codes = _codes(f"POLICY p RULE r WHEN {condition} THEN ALLOW")
    assert ("CONTRADICTORY_CONDITION" in codes) is contradictory
