"""JSON rule model, YAML and AWS-IAM-style documents into the rule model."""

from __future__ import annotations

import json

from domain.policy.rule_model import AnyOf, Combining, Comparison, Effect, Operator, Policy
from domain.policy.sources import SourceFormat, UnparsedPolicy, parse_source


def test_a_json_document_with_policies_yields_each_policy_and_isolates_a_bad_one() -> None:
    document = {
        "policies": [
            {"policy_id": "a", "rules": [{"id": "r", "effect": "allow"}]},
            {"policy_id": "b", "rules": [{"id": "r", "effect": "maybe"}]},
        ]
    }
    first, second = parse_source("batch.json", json.dumps(document, indent=2))
    assert isinstance(first, Policy)
    assert first.combining is Combining.DENY_OVERRIDES
    assert first.default is Effect.DENY
    assert isinstance(second, UnparsedPolicy)
    assert second.name == "b"


def test_invalid_json_reports_line_and_column() -> None:
    [parsed] = parse_source("bad.json", '{\n  "policy_id": "x",\n  "rules": [,]\n}')
    assert isinstance(parsed, UnparsedPolicy)
    assert (parsed.error.location.line, parsed.error.location.column) == (3, 13)


def test_rule_locations_point_at_each_rule_in_json() -> None:
    text = (
        '{"policy_id": "p",\n "rules": [\n  {"id": "one", "effect": "allow"},\n'
        '  {"id": "two", "effect": "deny"}]}'
    )
    [policy] = parse_source("p.json", text)
    assert isinstance(policy, Policy)
    assert [rule.location.line for rule in policy.rules] == [3, 4]  # type: ignore[union-attr]


def test_script_and_unknown_operators_make_the_rule_unsupported_not_dropped() -> None:
    document = {
        "policy_id": "p",
        "rules": [
            {"id": "s", "effect": "allow", "when": {"op": "script", "value": "return 1"}},
            {"id": "u", "effect": "allow", "when": {"field": "user.a", "op": "near", "value": 1}},
            {"id": "ok", "effect": "deny"},
        ],
    }
    [policy] = parse_source("p.json", json.dumps(document))
    assert isinstance(policy, Policy)
    assert [rule.id for rule in policy.rules] == ["ok"]
    assert [
        (item.id, "script" in item.why or "near" in item.why) for item in policy.unsupported
    ] == [
        ("s", True),
        ("u", True),
    ]
    assert policy.total_rules == 3


def test_yaml_holds_one_policy_per_document_with_rule_lines() -> None:
    text = (
        "policy_id: one\nrules:\n  - id: a\n    effect: allow\n"
        "---\npolicy_id: two\ncombining: first-applicable\nrules: []\n"
    )
    one, two = parse_source("p.yaml", text)
    assert isinstance(one, Policy)
    assert isinstance(two, Policy)
    assert one.rules[0].location.line == 3  # type: ignore[union-attr]
    assert two.combining is Combining.FIRST_APPLICABLE


def test_iam_documents_are_detected_and_mean_deny_overrides_with_default_deny() -> None:
    document = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "Read",
                "Effect": "Allow",
                "Action": ["docs:Get*", "docs:List"],
                "Resource": "arn:docs:?",
                "Condition": {"StringEquals": {"user.department": ["eng", "ops"]}},
            },
            {"Effect": "Deny", "Action": "docs:Delete"},
        ],
    }
    [policy] = parse_source("team-docs.json", json.dumps(document))
    assert isinstance(policy, Policy)
    assert policy.policy_id == "team-docs"
    assert policy.source_format == "iam"
    read, delete = policy.rules
    assert read.when.members[0] == AnyOf(  # type: ignore[union-attr]
        (
            Comparison("action", Operator.STARTS_WITH, "docs:Get"),
            Comparison("action", Operator.EQ, "docs:List"),
        )
    )
    assert read.when.members[1] == Comparison("resource.id", Operator.MATCHES, "(?s)^arn:docs:.$")  # type: ignore[union-attr]
    assert read.when.members[2] == Comparison("user.department", Operator.IN, ["eng", "ops"])  # type: ignore[union-attr]
    assert delete.id == "statement-2"
    assert delete.effect is Effect.DENY


def test_iam_qualifiers_are_flagged_as_partial() -> None:
    document = {
        "Version": "2012-10-17",
        "Id": "tags",
        "Statement": [
            {
                "Sid": "A",
                "Effect": "Allow",
                "Action": "*",
                "Condition": {"StringEqualsIfExists": {"user.a": "x"}},
            },
            {
                "Sid": "B",
                "Effect": "Allow",
                "Action": "*",
                "Condition": {"ForAllValues:StringLike": {"user.t": "x"}},
            },
        ],
    }
    [policy] = parse_source("tags.json", json.dumps(document), SourceFormat.IAM)
    assert isinstance(policy, Policy)
    assert [item.id for item in policy.unsupported] == ["A", "B"]
