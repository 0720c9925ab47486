"""The gap catalogue: its rules, detectors on legacy sources and Rego, score."""

from __future__ import annotations

import pytest

from domain.policy.gaps.catalogue import CATALOGUE, GapRule
from domain.policy.gaps.gap_report import policy_gaps, rego_gaps, severity_score
from domain.policy.rego_generator import generate_rego
from domain.policy.rule_model import Policy
from domain.policy.sources import parse_source


def _policy(text: str) -> Policy:
    [parsed] = parse_source("p.rules", text)
    assert isinstance(parsed, Policy), parsed
    return parsed


def _gap_ids(text: str) -> set[str]:
    return {finding.gap_id for finding in policy_gaps(_policy(text), "p.rules")}


def test_the_catalogue_has_every_rule_decisions_require_with_complete_entries() -> None:
    titles = {rule.title for rule in CATALOGUE}
    assert {
        "No default deny",
        "Wildcard allow",
        "Allow without conditions on sensitive resources",
        "Missing constitutional guard",
        "Missing audit obligation",
        "Separation-of-powers violation",
        "Unreachable or shadowed rule",
        "Contradictory rules",
        "Unbounded validity",
        "PII access without purpose",
    } <= titles
    assert len({rule.id for rule in CATALOGUE}) == len(CATALOGUE)
    for rule in CATALOGUE:
        assert all((rule.rationale, rule.detector, rule.remediation, rule.remediation_policy))


@pytest.mark.parametrize(
    ("gap_id", "text"),
    [
        ("GAP-001", "POLICY p DEFAULT allow RULE r WHEN user.a EXISTS THEN DENY"),
        ("GAP-002", "POLICY p RULE everything THEN ALLOW"),
        ("GAP-003", 'POLICY p RULE r WHEN resource.type == "medical" THEN ALLOW'),
        ("GAP-005", 'POLICY p RULE r WHEN user.role == "x" THEN ALLOW'),
        (
            "GAP-006",
            'POLICY p RULE r WHEN user.role == "clerk" AND action IN ["propose", "approve"]'
            " THEN ALLOW",
        ),
        (
            "GAP-007",
            "POLICY p COMBINE first-applicable RULE a THEN DENY "
            "RULE b WHEN user.a EXISTS THEN ALLOW",
        ),
        (
            "GAP-008",
            "POLICY p RULE a WHEN user.a == 1 THEN ALLOW RULE b WHEN user.a == 1 THEN DENY",
        ),
        ("GAP-009", 'POLICY p RULE r WHEN user.role == "x" THEN ALLOW'),
        (
            "GAP-010",
            'POLICY p RULE r WHEN resource.tags CONTAINS "pii" AND user.role == "x" THEN ALLOW',
        ),
    ],
)
def test_each_detector_finds_its_gap_in_a_legacy_policy(gap_id: str, text: str) -> None:
    assert gap_id in _gap_ids(text)


@pytest.mark.parametrize("rule", CATALOGUE, ids=lambda rule: rule.id)
def test_each_remediation_is_free_of_the_gap_it_remediates(rule: GapRule) -> None:
    remediation = _policy(rule.remediation_policy)
    rego = generate_rego(remediation)
    assert rule.id not in {finding.gap_id for finding in rego_gaps("r.rego", rego)}
    if rule.id != "GAP-004":  # a legacy source never carries the guard; its Rego does
        assert rule.id not in _gap_ids(rule.remediation_policy)


def test_rego_without_guard_and_with_default_allow_is_found_in_rego_too() -> None:
    module = "package legacy\n\ndefault allow := true\n"
    found = {finding.gap_id for finding in rego_gaps("legacy.rego", module)}
    assert {"GAP-001", "GAP-004"} <= found


def test_the_score_weights_critical_10_high_5_medium_2_low_1() -> None:
    findings = policy_gaps(
        _policy('POLICY p DEFAULT allow RULE r WHEN user.role == "x" THEN ALLOW'), "p"
    )
    by_id = {finding.gap_id for finding in findings}
    assert by_id == {"GAP-001", "GAP-004", "GAP-005", "GAP-009"}
    assert severity_score(findings) == 10 + 10 + 2 + 1
