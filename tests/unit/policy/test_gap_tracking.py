"""Gaps tracked over time: findings on registered versions, stable identities, the run's
cumulative tally, reviews, and the gap_analysis kind's parameters."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, cast
from uuid import UUID, uuid4

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from commands.gap_analysis import GapAnalysisKind
from commands.migration_kinds import JobSource
from domain.errors import InvalidStateTransition, ValidationFailed
from domain.policy.gaps.tracking import (
    MAX_REASON,
    REASON_PATTERN,
    GapStatus,
    RegisteredVersion,
    RunTally,
    gap_identity,
    location_of,
    reviewed_status,
    version_gaps,
)
from domain.policy.rego_generator import generate_rego
from domain.policy.rule_model import Policy
from domain.policy.sources import parse_source

TENANT = UUID("6f1c1d2e-0000-4000-8000-000000000001")
OPEN_DOOR = "POLICY open-door\nDEFAULT allow\nRULE anyone-reads\n  THEN ALLOW\n"
PAYROLL = (
    "POLICY payroll\nRULE payroll-read\n"
    '  WHEN resource.type == "payroll" AND action == "read"\n  THEN ALLOW\n'
    'RULE clerk-proposes\n  WHEN user.role == "clerk" AND action IN ["propose", "approve"]\n'
    "  THEN ALLOW\n"
)
CLEAN = (
    "POLICY clean\nDEFAULT deny\nRULE analysts-read\n"
    '  WHEN user.role == "analyst" AND action == "read" AND context.time < resource.expires_at\n'
    "  THEN ALLOW\n  OBLIGE audit\n"
)


def _version(key: str, text: str, version: int = 1) -> RegisteredVersion:
    [policy] = parse_source(f"{key}.rules", text)
    assert isinstance(policy, Policy), policy
    return RegisteredVersion(key, version, text, "dsl", generate_rego(policy))


def _found(version: RegisteredVersion) -> set[tuple[str, str]]:
    return {(gap.rule_id, gap.location) for gap in version_gaps(TENANT, version)}


def test_a_registered_legacy_policy_is_judged_on_its_rule_model_and_its_guarded_rego() -> None:
    assert _found(_version("open-door", OPEN_DOOR)) == {
        ("GAP-001", "policy"),
        ("GAP-002", "rule anyone-reads"),
        ("GAP-005", "policy"),
        ("GAP-009", "policy"),
    }  # no GAP-004: the converted Rego carries the constitutional guard
    assert _found(_version("payroll", PAYROLL)) == {
        ("GAP-003", "rule payroll-read"),
        ("GAP-005", "policy"),
        ("GAP-006", "role clerk"),
        ("GAP-009", "policy"),
    }
    assert _found(_version("clean", CLEAN)) == set()


def test_a_version_submitted_as_rego_is_judged_on_its_rego() -> None:
    unguarded = "package acgs.custom.door\n\ndefault allow := true\n"
    version = RegisteredVersion("door", 1, unguarded, "rego", unguarded)
    assert _found(version) == {("GAP-001", "policy"), ("GAP-004", "policy")}


def test_a_gap_keeps_its_identity_when_the_wording_of_its_finding_changes() -> None:
    one_rule = _version("payroll", PAYROLL.split("RULE clerk", maxsplit=1)[0])
    both_rules = _version("payroll", PAYROLL, version=2)
    [first] = [g for g in version_gaps(TENANT, one_rule) if g.rule_id == "GAP-005"]
    [second] = [g for g in version_gaps(TENANT, both_rules) if g.rule_id == "GAP-005"]
    assert first.detail != second.detail  # "1 allow rule(s)" against "2 allow rule(s)"
    assert first.gap_id == second.gap_id == gap_identity(TENANT, "GAP-005", "payroll", "policy")
    assert (first.policy_version, second.policy_version) == (1, 2)
    assert gap_identity(uuid4(), "GAP-005", "payroll", "policy") != first.gap_id


@pytest.mark.parametrize(
    ("detail", "location"),
    [
        ("allow rule r1 applies to every request", "rule r1"),
        ("rule r7: shadowed by rule r2", "rule r7"),
        ("rules a and b have the same condition, opposite effects", "rules a and b"),
        ("unconditional allow: rule_3", "rule rule_3"),
        ("legislative may both propose and approve", "role legislative"),
        ("3 allow rule(s) without a time bound", "policy"),
        ("the default decision is allow", "policy"),
    ],
)
def test_the_location_of_a_finding(detail: str, location: str) -> None:
    assert location_of(detail) == location


def test_the_tally_is_cumulative_and_survives_its_json_form() -> None:
    first = version_gaps(TENANT, _version("open-door", OPEN_DOOR))
    second = version_gaps(TENANT, _version("payroll", PAYROLL))
    tally = RunTally().add(1, first)
    tally = RunTally.from_json(tally.as_json()).add(2, second)  # a re-claimed job goes on
    assert tally.as_json() == {
        "policies_analysed": 3,
        "gaps_found": 8,
        "score": (10 + 10 + 2 + 1) + (5 + 2 + 5 + 1),
        "gap_severities": {"critical": 2, "high": 2, "medium": 2, "low": 2},
        "gap_rules": {"GAP-001": 1, "GAP-002": 1, "GAP-003": 1, "GAP-005": 2, "GAP-006": 1,
                      "GAP-009": 2},
    }  # fmt: skip


def test_an_open_gap_is_accepted_and_an_accepted_one_reopened_each_with_a_reason() -> None:
    assert reviewed_status(GapStatus.OPEN, "accept", "compensating control") is GapStatus.ACCEPTED
    assert reviewed_status(GapStatus.ACCEPTED, "reopen", "control removed") is GapStatus.OPEN
    for status, action in [
        (GapStatus.ACCEPTED, "accept"),
        (GapStatus.OPEN, "reopen"),
        (GapStatus.FIXED, "accept"),
        (GapStatus.FIXED, "reopen"),
    ]:
        with pytest.raises(InvalidStateTransition):
            reviewed_status(status, action, "why")


def test_a_bad_review_names_every_bad_field_at_once() -> None:
    with pytest.raises(ValidationFailed) as refused:
        reviewed_status(GapStatus.OPEN, "ignore", "   ")
    assert [f["field"] for f in refused.value.details["fields"]] == ["action", "reason"]
    with pytest.raises(ValidationFailed) as control:
        reviewed_status(GapStatus.OPEN, "accept", "ok\x00")
    assert [f["field"] for f in control.value.details["fields"]] == ["reason"]
    with pytest.raises(ValidationFailed):
        reviewed_status(GapStatus.OPEN, "accept", "x" * 1001)


def test_the_kind_normalises_its_parameters_and_lists_every_bad_one() -> None:
    kind = GapAnalysisKind(
        cast("Any", None), cast("Any", None)
    )  # validate never reads the registry
    assert kind.validate({}, None) == {"scope": "active", "batch_size": 100}
    assert kind.validate({"scope": "latest", "batch_size": 7}, None) == {
        "scope": "latest",
        "batch_size": 7,
    }
    with pytest.raises(ValidationFailed) as refused:
        kind.validate(
            {"scope": "everything", "batch_size": 0, "colour": "red"},
            JobSource(path=Path("source.json"), filename="source.json"),
        )
    assert [f["field"] for f in refused.value.details["fields"]] == [
        "parameters.colour",
        "parameters.scope",
        "parameters.batch_size",
        "source",
    ]


@settings(max_examples=100, deadline=None)
@given(
    st.from_regex(re.compile(REASON_PATTERN), fullmatch=True).filter(
        lambda s: 1 <= len(s) <= MAX_REASON
    )
)
def test_every_reason_the_api_documents_is_accepted(reason: str) -> None:
    assert reviewed_status(GapStatus.OPEN, "accept", reason) is GapStatus.ACCEPTED


def test_reasons_the_domain_refuses_are_outside_the_document() -> None:
    for refused in ("", "   ", "\n\t", "ok\x01", "ok\x7f", "x" * (MAX_REASON + 1)):
        documented = re.fullmatch(REASON_PATTERN, refused) and len(refused) <= MAX_REASON
        assert not documented, refused
        with pytest.raises(ValidationFailed):
            reviewed_status(GapStatus.OPEN, "accept", refused)
