"""The reference evaluator against hand-written tables: every rule-model operator and every IAM
construct on an absent field, `null`, a value of the wrong type, a match and a miss.

Each expected value is read off the documented meaning (docs/legacy-formats.md, "Meaning,
exactly" and "Format 1b"), never obtained by running the code: a comparison on an absent field is
false (`ne` and `not_in` too), `not_exists` is true; `null` is a present value; types never mix
(`"1"` is not `1`, `true` is not `1`); string operators are false on non-strings; NotAction and
NotResource hold only for a present string that matches none of the patterns.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from domain.constitution import DEFAULT_CONSTITUTIONAL_HASH
from domain.policy.reference_evaluator import comparison_holds, evaluate
from domain.policy.rule_model import Comparison, Operator, Policy
from domain.policy.sources import SourceFormat, UnparsedPolicy, parse_source

HASH = DEFAULT_CONSTITUTIONAL_HASH
ABSENT = object()

# (operator, comparison value, field value or ABSENT, expected)
OPERATOR_TABLE: list[tuple[Operator, Any, Any, bool]] = [
    # eq
    (Operator.EQ, "a", ABSENT, False),
    (Operator.EQ, "a", None, False),
    (Operator.EQ, "a", 1, False),
    (Operator.EQ, "a", "a", True),
    (Operator.EQ, "a", "b", False),
    (Operator.EQ, 1, 1.0, True),
    (Operator.EQ, 1, "1", False),
    (Operator.EQ, 1, True, False),
    (Operator.EQ, None, None, True),
    (Operator.EQ, ["a"], ["a"], True),
    # ne: false on an absent field, true on any other present value
    (Operator.NE, "a", ABSENT, False),
    (Operator.NE, "a", None, True),
    (Operator.NE, "a", 1, True),
    (Operator.NE, "a", "a", False),
    (Operator.NE, "a", "b", True),
    (Operator.NE, 1, 1.0, False),
    # gt / gte / lt / lte: two numbers or two strings only
    (Operator.GT, 5, ABSENT, False),
    (Operator.GT, 5, None, False),
    (Operator.GT, 5, "6", False),
    (Operator.GT, 5, 6, True),
    (Operator.GT, 5, 5, False),
    (Operator.GT, 5, 5.5, True),
    (Operator.GTE, 5, 5, True),
    (Operator.GTE, 5, 4.9, False),
    (Operator.GTE, 5, True, False),
    (Operator.LT, "m", "a", True),
    (Operator.LT, "m", "z", False),
    (Operator.LT, "m", 1, False),
    (Operator.LT, "m", ABSENT, False),
    (Operator.LTE, 5, 5.0, True),
    (Operator.LTE, 5, 6, False),
    (Operator.LTE, 5, [4], False),
    # in / not_in
    (Operator.IN, ["a", 1], ABSENT, False),
    (Operator.IN, ["a", 1], None, False),
    (Operator.IN, ["a", 1], True, False),
    (Operator.IN, ["a", 1], "a", True),
    (Operator.IN, ["a", 1], 1.0, True),
    (Operator.IN, ["a", 1], "1", False),
    (Operator.IN, ["a", 1], "b", False),
    (Operator.NOT_IN, ["a"], ABSENT, False),
    (Operator.NOT_IN, ["a"], None, True),
    (Operator.NOT_IN, ["a"], 1, True),
    (Operator.NOT_IN, ["a"], "a", False),
    (Operator.NOT_IN, ["a"], "b", True),
    # contains: a list holding the value, or a string holding the substring
    (Operator.CONTAINS, "pii", ABSENT, False),
    (Operator.CONTAINS, "pii", None, False),
    (Operator.CONTAINS, "pii", 1, False),
    (Operator.CONTAINS, "pii", {"pii": 1}, False),
    (Operator.CONTAINS, "pii", ["pii"], True),
    (Operator.CONTAINS, "pii", "xpiiy", True),
    (Operator.CONTAINS, "pii", ["x"], False),
    (Operator.CONTAINS, 1, [1.0], True),
    (Operator.CONTAINS, 1, "x1y", False),
    # starts_with / ends_with / matches: strings only
    (Operator.STARTS_WITH, "ab", ABSENT, False),
    (Operator.STARTS_WITH, "ab", None, False),
    (Operator.STARTS_WITH, "ab", 12, False),
    (Operator.STARTS_WITH, "ab", ["abc"], False),
    (Operator.STARTS_WITH, "ab", "abc", True),
    (Operator.STARTS_WITH, "ab", "ab", True),
    (Operator.STARTS_WITH, "ab", "a", False),
    (Operator.ENDS_WITH, "yz", ABSENT, False),
    (Operator.ENDS_WITH, "yz", None, False),
    (Operator.ENDS_WITH, "yz", "xyz", True),
    (Operator.ENDS_WITH, "yz", "z", False),
    (Operator.MATCHES, "b+", ABSENT, False),
    (Operator.MATCHES, "b+", None, False),
    (Operator.MATCHES, "b+", 5, False),
    (Operator.MATCHES, "b+", "abbbc", True),
    (Operator.MATCHES, "b+", "ac", False),
    (Operator.MATCHES, "^a.c$", "abc", True),
    (Operator.MATCHES, "^a.c$", "xabc", False),
    # exists / not_exists: about presence only (null is present)
    (Operator.EXISTS, None, ABSENT, False),
    (Operator.EXISTS, None, None, True),
    (Operator.EXISTS, None, False, True),
    (Operator.NOT_EXISTS, None, ABSENT, True),
    (Operator.NOT_EXISTS, None, None, False),
    (Operator.NOT_EXISTS, None, 0, False),
]


@pytest.mark.parametrize(("op", "value", "field", "expected"), OPERATOR_TABLE)
def test_each_operator_on_absent_null_wrong_type_match_and_miss(
    op: Operator, value: Any, field: Any, expected: bool
) -> None:
    request: dict[str, Any] = {"user": {} if field is ABSENT else {"x": field}}
    assert comparison_holds(Comparison("user.x", op, value), request) is expected


@pytest.mark.parametrize(
    ("request_user", "expected"),
    [
        ({"a": 1}, False),  # the other field absent
        ({"a": 1, "b": None}, False),
        ({"a": 1, "b": "1"}, False),
        ({"a": 1, "b": 1.0}, True),
        ("not an object", False),  # a path through a non-object is absent
    ],
)
def test_comparing_two_fields(request_user: Any, expected: bool) -> None:
    comparison = Comparison("user.a", Operator.EQ, value_field="user.b")
    assert comparison_holds(comparison, {"user": request_user}) is expected


def test_a_path_through_a_non_object_is_absent() -> None:
    request = {"user": "x"}
    assert comparison_holds(Comparison("user.x", Operator.NE, "a"), request) is False
    assert comparison_holds(Comparison("user.x", Operator.NOT_EXISTS), request) is True


def _iam(statement: dict[str, Any]) -> Policy:
    document = {"Version": "2012-10-17", "Id": "t", "Statement": [{"Effect": "Allow", **statement}]}
    [policy] = parse_source("t.json", json.dumps(document), SourceFormat.IAM)
    assert isinstance(policy, Policy), policy
    return policy


def _request(**paths: Any) -> dict[str, Any]:
    request: dict[str, Any] = {"constitutional_hash": HASH}
    for dotted, value in paths.items():
        *parents, last = dotted.split("__")
        node = request
        for segment in parents:
            node = node.setdefault(segment, {})
        node[last] = value
    return request


NO = object()  # the key left out of the request
# (statement, request paths ("__" for "."), does the Allow statement apply)
IAM_TABLE: list[tuple[dict[str, Any], dict[str, Any], bool]] = [
    # Action: the wildcard on `action`; a non-string or absent action is no match
    ({"Action": "s3:Get*"}, {"action": "s3:GetObject"}, True),
    ({"Action": "s3:Get*"}, {"action": "s3:Get"}, True),
    ({"Action": "s3:Get*"}, {"action": "s3:PutObject"}, False),
    ({"Action": "s3:Get*"}, {}, False),
    ({"Action": "s3:Get*"}, {"action": None}, False),
    ({"Action": "s3:Get*"}, {"action": 5}, False),
    ({"Action": "s3:Get*"}, {"action": ["s3:GetObject"]}, False),
    ({"Action": "s3:Put?bject"}, {"action": "s3:PutObject"}, True),
    ({"Action": "s3:Put?bject"}, {"action": "s3:Putbject"}, False),
    ({"Action": "s3:Put?bject"}, {"action": "s3:PutXXbject"}, False),
    ({"Action": "*"}, {"action": ""}, True),
    ({"Action": "*"}, {}, False),
    ({"Action": "*"}, {"action": 7}, False),
    ({"Action": ["a", "b*"]}, {"action": "bx"}, True),
    ({"Action": "a.b"}, {"action": "axb"}, False),  # `.` is literal
    # NotAction: a present string matching none of the patterns
    ({"NotAction": ["s3:Delete*"]}, {"action": "s3:GetObject"}, True),
    ({"NotAction": ["s3:Delete*"]}, {"action": "s3:DeleteBucket"}, False),
    ({"NotAction": ["s3:Delete*"]}, {}, False),
    ({"NotAction": ["s3:Delete*"]}, {"action": None}, False),
    ({"NotAction": ["s3:Delete*"]}, {"action": 5}, False),
    ({"NotAction": ["s3:Delete*"]}, {"action": True}, False),
    ({"NotAction": ["s3:Delete*"]}, {"action": ["s3:GetObject"]}, False),
    ({"NotAction": "s3:Re?d"}, {"action": "s3:Reed"}, False),
    ({"NotAction": "s3:Re?d"}, {"action": "s3:Rd"}, True),
    # Resource / NotResource: the same on `resource.id`
    ({"Resource": "arn:x:*"}, {"resource__id": "arn:x:1"}, True),
    ({"Resource": "arn:x:*"}, {"resource__id": "arn:y:1"}, False),
    ({"Resource": "arn:x:*"}, {"resource": {}}, False),
    ({"Resource": "arn:x:*"}, {"resource": "arn:x:1"}, False),
    ({"Resource": "*"}, {}, False),
    ({"NotResource": "arn:secret/*"}, {"resource__id": "arn:public/1"}, True),
    ({"NotResource": "arn:secret/*"}, {"resource__id": "arn:secret/1"}, False),
    ({"NotResource": "arn:secret/*"}, {"resource": {}}, False),
    ({"NotResource": "arn:secret/*"}, {}, False),
    ({"NotResource": "arn:secret/*"}, {"resource__id": None}, False),
    ({"NotResource": "arn:secret/*"}, {"resource__id": 3}, False),
    # neither Action nor Resource: the statement does not look at them
    ({}, {}, True),
    # StringEquals: equal strings; one of several values
    ({"Condition": {"StringEquals": {"user.dept": "eng"}}}, {"user__dept": "eng"}, True),
    ({"Condition": {"StringEquals": {"user.dept": "eng"}}}, {"user__dept": "ops"}, False),
    ({"Condition": {"StringEquals": {"user.dept": "eng"}}}, {}, False),
    ({"Condition": {"StringEquals": {"user.dept": "eng"}}}, {"user__dept": None}, False),
    ({"Condition": {"StringEquals": {"user.dept": "eng"}}}, {"user__dept": ["eng"]}, False),
    ({"Condition": {"StringEquals": {"user.dept": ["eng", "ops"]}}}, {"user__dept": "ops"}, True),
    ({"Condition": {"StringEquals": {"user.dept": ["eng", "ops"]}}}, {}, False),
    ({"Condition": {"StringEquals": {"user.level": 5}}}, {"user__level": "5"}, True),
    ({"Condition": {"StringEquals": {"user.level": 5}}}, {"user__level": 5}, False),
    # StringNotEquals: a present string that differs
    ({"Condition": {"StringNotEquals": {"user.role": "admin"}}}, {"user__role": "dev"}, True),
    ({"Condition": {"StringNotEquals": {"user.role": "admin"}}}, {"user__role": "admin"}, False),
    ({"Condition": {"StringNotEquals": {"user.role": "admin"}}}, {}, False),
    ({"Condition": {"StringNotEquals": {"user.role": "admin"}}}, {"user__role": None}, False),
    ({"Condition": {"StringNotEquals": {"user.role": "admin"}}}, {"user__role": 1}, False),
    # StringLike / StringNotLike
    (
        {"Condition": {"StringLike": {"user.mail": "*@acme.com"}}},
        {"user__mail": "a@acme.com"},
        True,
    ),
    (
        {"Condition": {"StringLike": {"user.mail": "*@acme.com"}}},
        {"user__mail": "a@acme.org"},
        False,
    ),
    ({"Condition": {"StringLike": {"user.mail": "*@acme.com"}}}, {}, False),
    ({"Condition": {"StringLike": {"user.mail": "*@acme.com"}}}, {"user__mail": 7}, False),
    ({"Condition": {"StringLike": {"user.mail": "a?c*d"}}}, {"user__mail": "abcxxd"}, True),
    ({"Condition": {"StringLike": {"user.mail": "a?c*d"}}}, {"user__mail": "acxd"}, False),
    (
        {"Condition": {"StringNotLike": {"user.mail": "*@acme.com"}}},
        {"user__mail": "a@e.com"},
        True,
    ),
    (
        {"Condition": {"StringNotLike": {"user.mail": "*@acme.com"}}},
        {"user__mail": "a@acme.com"},
        False,
    ),
    ({"Condition": {"StringNotLike": {"user.mail": "*@acme.com"}}}, {}, False),
    ({"Condition": {"StringNotLike": {"user.mail": "*@acme.com"}}}, {"user__mail": None}, False),
    # Numeric*: numbers only; the policy's value read as a number
    ({"Condition": {"NumericLessThan": {"user.risk": "5"}}}, {"user__risk": 4}, True),
    ({"Condition": {"NumericLessThan": {"user.risk": "5"}}}, {"user__risk": 5}, False),
    ({"Condition": {"NumericLessThan": {"user.risk": "5"}}}, {"user__risk": "4"}, False),
    ({"Condition": {"NumericLessThan": {"user.risk": "5"}}}, {}, False),
    ({"Condition": {"NumericLessThan": {"user.risk": "5"}}}, {"user__risk": True}, False),
    ({"Condition": {"NumericEquals": {"user.n": "1.5"}}}, {"user__n": 1.5}, True),
    ({"Condition": {"NumericEquals": {"user.n": "1.5"}}}, {"user__n": "1.5"}, False),
    ({"Condition": {"NumericNotEquals": {"user.n": "3"}}}, {"user__n": 4}, True),
    ({"Condition": {"NumericNotEquals": {"user.n": "3"}}}, {"user__n": 3.0}, False),
    ({"Condition": {"NumericNotEquals": {"user.n": "3"}}}, {"user__n": "4"}, False),
    ({"Condition": {"NumericNotEquals": {"user.n": "3"}}}, {}, False),
    ({"Condition": {"NumericGreaterThanEquals": {"user.n": 2}}}, {"user__n": 2}, True),
    ({"Condition": {"NumericGreaterThanEquals": {"user.n": 2}}}, {"user__n": 1.9}, False),
    ({"Condition": {"NumericLessThanEquals": {"user.n": "2"}}}, {"user__n": None}, False),
    # Bool: booleans only
    ({"Condition": {"Bool": {"context.mfa": "true"}}}, {"context__mfa": True}, True),
    ({"Condition": {"Bool": {"context.mfa": "true"}}}, {"context__mfa": False}, False),
    ({"Condition": {"Bool": {"context.mfa": "true"}}}, {"context__mfa": "true"}, False),
    ({"Condition": {"Bool": {"context.mfa": "true"}}}, {"context__mfa": 1}, False),
    ({"Condition": {"Bool": {"context.mfa": "true"}}}, {}, False),
    ({"Condition": {"Bool": {"context.mfa": False}}}, {"context__mfa": False}, True),
    # Null: about presence; null is present
    ({"Condition": {"Null": {"context.ticket": "true"}}}, {}, True),
    ({"Condition": {"Null": {"context.ticket": "true"}}}, {"context__ticket": None}, False),
    ({"Condition": {"Null": {"context.ticket": "true"}}}, {"context__ticket": "T-1"}, False),
    ({"Condition": {"Null": {"context.ticket": "false"}}}, {"context__ticket": "T-1"}, True),
    ({"Condition": {"Null": {"context.ticket": "false"}}}, {"context__ticket": None}, True),
    ({"Condition": {"Null": {"context.ticket": "false"}}}, {}, False),
    # several keys and operators: all of them
    (
        {"Condition": {"StringEquals": {"user.a": "x"}, "Bool": {"user.b": "true"}}},
        {"user__a": "x"},
        False,
    ),
    (
        {"Condition": {"StringEquals": {"user.a": "x"}, "Bool": {"user.b": "true"}}},
        {"user__a": "x", "user__b": True},
        True,
    ),
]


@pytest.mark.parametrize(("statement", "paths", "expected"), IAM_TABLE)
def test_each_iam_construct_on_absent_null_wrong_type_match_and_miss(
    statement: dict[str, Any], paths: dict[str, Any], expected: bool
) -> None:
    policy = _iam(statement)
    assert evaluate(policy, _request(**paths), HASH).allow is expected


@pytest.mark.parametrize(
    ("statement", "message"),
    [
        ({"Action": "a", "NotAction": "b"}, "Action and NotAction exclude each other"),
        ({"Resource": "a", "NotResource": "b"}, "Resource and NotResource exclude each other"),
        ({"Condition": {"Bool": {"context.mfa": "maybe"}}}, "must be true or false"),
        ({"Condition": {"Null": {"context.t": 1}}}, "must be true or false"),
        ({"Condition": {"NumericLessThan": {"user.r": "five"}}}, "not a number"),
        ({"Condition": {"NumericLessThan": {"user.r": "1e999"}}}, "not a finite number"),
        ({"Condition": {"NumericLessThan": {"user.r": True}}}, "not a number"),
        ({"Condition": {"StringEquals": {"user.a": [{"k": 1}]}}}, "must be strings"),
        ({"Condition": {"StringLike": {"user.a": None}}}, "must be strings"),
        ({"Action": 5}, "entries must be strings"),
    ],
)
def test_iam_values_of_the_wrong_kind_are_model_errors(
    statement: dict[str, Any], message: str
) -> None:
    document = {"Version": "2012-10-17", "Id": "t", "Statement": [{"Effect": "Allow", **statement}]}
    [parsed] = parse_source("t.json", json.dumps(document), SourceFormat.IAM)
    assert isinstance(parsed, UnparsedPolicy)
    assert parsed.error.code == "POLICY_MODEL_ERROR"
    assert message in parsed.error.reason
