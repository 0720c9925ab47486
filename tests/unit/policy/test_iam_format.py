"""An IAM policy document into the rule model: conditions by operator, and each fault of a
document or statement refused (or flagged for review) with its reason."""

from __future__ import annotations

from typing import Any

import pytest

from domain.policy.errors import PolicyModelError
from domain.policy.iam_format import policy_from_iam
from domain.policy.rule_model import AllOf, Comparison, Location, Operator, UnsupportedRule

HERE = Location("p.json")


def _statement(**fields: Any) -> dict[str, Any]:
    return {"Sid": "s1", "Effect": "Allow", "Action": "s3:GetObject", **fields}


def test_null_and_bool_conditions_become_presence_and_equality() -> None:
    condition = {"Null": {"user.mfa": "true", "user.team": False}, "Bool": {"user.admin": "TRUE"}}
    policy = policy_from_iam({"Statement": [_statement(Condition=condition)]}, "p", HERE)
    [rule] = policy.rules
    assert rule.when == AllOf(
        (
            Comparison("action", Operator.EQ, "s3:GetObject"),
            Comparison("user.mfa", Operator.NOT_EXISTS),
            Comparison("user.team", Operator.EXISTS),
            Comparison("user.admin", Operator.EQ, value=True),
        )
    )


def test_an_operator_without_a_rule_model_meaning_flags_the_statement() -> None:
    condition = {"DateGreaterThan": {"request.time": "2020-01-01T00:00:00Z"}}
    policy = policy_from_iam({"Statement": [_statement(Condition=condition)]}, "p", HERE)
    assert policy.rules == ()
    assert policy.unsupported == (
        UnsupportedRule("s1", "IAM condition operator 'DateGreaterThan'", HERE),
    )


@pytest.mark.parametrize(
    ("document", "reason"),
    [
        (
            {"Id": "no spaces", "Statement": []},
            "IAM policy id must match [A-Za-z0-9_.-]+: 'no spaces'",
        ),
        ({"Statement": []}, "Statement must not be empty"),
        ({"Statement": [_statement(Action=[])]}, "Action must not be empty"),
        ({"Statement": ["s3:*"]}, "Statement #1 must be an object"),
        ({"Statement": [_statement(Sid=7)]}, "Statement #1: Sid must be a string"),
        ({"Statement": [_statement(Condition=["Bool"])]}, "Condition must be an object"),
        (
            {"Statement": [_statement(Condition={"Bool": "user.admin"})]},
            "Bool must map request paths to values",
        ),
        (
            {"Statement": [_statement(Condition={"Bool": {"aws:MultiFactor": True}})]},
            "condition key 'aws:MultiFactor' is not a request path",
        ),
    ],
)
def test_each_fault_is_refused_naming_it(document: dict[str, Any], reason: str) -> None:
    with pytest.raises(PolicyModelError) as refused:
        policy_from_iam(document, "p", HERE)
    assert refused.value.reason == reason
