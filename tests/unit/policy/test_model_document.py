"""A decoded JSON or YAML document into the rule model: what it accepts, and each refusal naming
what is wrong (and the policy, once its id is known)."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest

from domain.policy.errors import PolicyModelError
from domain.policy.model_document import policy_from_document
from domain.policy.rule_model import (
    AllOf,
    Comparison,
    Effect,
    Location,
    Not,
    Operator,
    UnsupportedRule,
)

HERE = Location("p.json")


def _rule(**overrides: Any) -> dict[str, Any]:
    return {"id": "r1", "effect": "allow", **overrides}


def _doc(*rules: Any, **overrides: Any) -> dict[str, Any]:
    return {"policy_id": "p", "rules": list(rules), **overrides}


def _when(condition: Any) -> dict[str, Any]:
    return _doc(_rule(when=condition))


def test_a_document_becomes_its_policy() -> None:
    document = _doc(
        _rule(
            when={
                "all": [
                    {"field": "user.level", "op": "gte", "value": 2.5},
                    {"not": {"field": "user.x", "op": "eq", "value_field": "user.y"}},
                ]
            },
            priority=3,
            reason="levels",
            obligations=[{"type": "log", "level": 2}],
        ),
        _rule(id="r2", when={"field": "user.name", "op": "matches", "value_field": "user.p"}),
        name="Orders",
        version=2,
    )
    policy = policy_from_document(document, HERE)
    [rule] = policy.rules
    assert rule.when == AllOf((
        Comparison("user.level", Operator("gte"), value=2.5),
        Not(Comparison("user.x", Operator("eq"), value_field="user.y")),
    ))  # fmt: skip
    assert (rule.effect, rule.priority, rule.reason) == (Effect.ALLOW, 3, "levels")
    assert [o.type for o in rule.obligations] == ["log"]
    assert (policy.name, policy.version, policy.description) == ("Orders", "2", None)
    assert policy.unsupported == (
        UnsupportedRule("r2", "'matches' against a pattern read from the request", HERE),
    )


@pytest.mark.parametrize(
    ("document", "reason"),
    [
        ([], "a policy must be an object"),
        (_doc(combining="first-wins"), "'first-wins' is not a valid Combining"),
        (_doc(rules={"r1": {}}), "'rules' must be a list"),
        (_doc("r1"), "rule #1 must be an object"),
        (_doc({"effect": "allow"}), "rule #1 needs an 'id' (a string)"),
        (_doc(_rule(priority="high")), "rule r1: 'priority' must be an integer"),
        (_doc(_rule(priority=True)), "rule r1: 'priority' must be an integer"),
        (_doc(_rule(reason=7)), "rule r1: 'reason' must be a string"),
        (_doc(_rule(), _rule()), "duplicate rule id 'r1'"),
        (_doc(_rule(obligations={"type": "log"})), "'obligations' must be a list"),
        (
            _doc(_rule(obligations=[{"kind": "log"}])),
            "an obligation is an object with a string 'type'",
        ),
        (_doc(name=["Orders"]), "'name' must be a string"),
        (_when("user.admin"), "a condition must be an object"),
        (_when({"all": [], "field": "a"}), "'all' must be the only key"),
        (_when({"any": {"field": "a", "op": "exists"}}), "'any' takes a list of conditions"),
        (_when({"field": "a", "op": 3}), "a comparison needs 'op' (a string)"),
        (_when({"field": 7, "op": "exists"}), "invalid or missing 'field' path: 7"),
        (_when({"field": "a..b", "op": "exists"}), "invalid or missing 'field' path: 'a..b'"),
        (
            _when({"field": "a", "op": "exists", "values": 1}),
            "unknown keys in comparison: ['values']",
        ),
        (
            _when({"field": "a", "op": "eq", "value": 1, "value_field": "b"}),
            "give either 'value' or 'value_field', not both",
        ),
        (
            _when({"field": "a", "op": "eq", "value_field": "1b"}),
            "invalid 'value_field' path: '1b'",
        ),
        (_when({"field": "a", "op": "eq"}), "operator 'eq' needs 'value' or 'value_field'"),
        (_when({"field": "a", "op": "eq", "value": float("nan")}), "value: non-finite number"),
        (
            _when({"field": "a", "op": "eq", "value": {1: "x"}}),
            "value: object keys must be strings",
        ),
        (
            _when({"field": "a", "op": "eq", "value": [date(2025, 1, 1)]}),
            "value: date is not a JSON value",
        ),
    ],
)
def test_each_fault_is_refused_naming_it(document: Any, reason: str) -> None:
    with pytest.raises(PolicyModelError) as refused:
        policy_from_document(document, HERE)
    assert refused.value.reason == reason
