"""The reference meaning of the rule model (legacy-formats.md, "Meaning, exactly")."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from domain.constitution import DEFAULT_CONSTITUTIONAL_HASH
from domain.policy.reference_evaluator import (
    CONSTITUTIONAL_HASH_MISMATCH,
    comparison_holds,
    condition_holds,
    evaluate,
    predicate,
)
from domain.policy.rule_model import (
    Combining,
    Comparison,
    Effect,
    Not,
    Obligation,
    Operator,
    Policy,
    Rule,
)
from tests.unit.policy.strategies import policies, requests

HASH = DEFAULT_CONSTITUTIONAL_HASH


def holds(op: Operator, field_value: Any, value: Any = None) -> bool:
    return comparison_holds(Comparison("user.x", op, value), {"user": {"x": field_value}})


@pytest.mark.parametrize(
    "op", [Operator.EQ, Operator.NE, Operator.IN, Operator.NOT_IN, Operator.GT]
)
def test_a_comparison_on_an_absent_field_is_false_even_ne_and_not_in(op: Operator) -> None:
    value = [1] if op in (Operator.IN, Operator.NOT_IN) else 1
    assert comparison_holds(Comparison("user.x", op, value), {"user": {}}) is False


def test_not_exists_is_true_on_an_absent_field_and_not_negates_whatever_it_gets() -> None:
    assert comparison_holds(Comparison("user.x", Operator.NOT_EXISTS), {}) is True
    negated_ne = Rule("r", Effect.ALLOW, Not(Comparison("user.x", Operator.NE, 1)))
    policy = Policy("p", (negated_ne,))
    assert evaluate(policy, {"constitutional_hash": HASH}, HASH).allow is True


def test_numbers_compare_numerically_but_strings_and_booleans_are_not_numbers() -> None:
    assert holds(Operator.EQ, 1.0, 1)
    assert not holds(Operator.EQ, "1", 1)
    assert not holds(Operator.EQ, field_value=True, value=1)
    assert not holds(Operator.IN, field_value=True, value=[1, 0])
    assert holds(Operator.IN, 2.0, [1, 2])
    assert holds(Operator.NE, field_value=True, value=1)


def test_ordering_holds_only_between_two_numbers_or_two_strings() -> None:
    assert holds(Operator.GT, 3, 2.5)
    assert holds(Operator.LT, "abc", "abd")
    assert not holds(Operator.GT, "3", 2)
    assert not holds(Operator.GT, [3], [2])
    assert not holds(Operator.GTE, field_value=True, value=False)


def test_contains_takes_a_list_member_or_a_substring() -> None:
    assert holds(Operator.CONTAINS, ["a", 1.0], 1)
    assert holds(Operator.CONTAINS, "xpiiy", "pii")
    assert not holds(Operator.CONTAINS, "x1y", 1)
    assert not holds(Operator.CONTAINS, {"a": 1}, "a")


def test_matches_searches_anywhere_and_is_false_on_non_strings() -> None:
    assert holds(Operator.MATCHES, "xxabcxx", "a.c")
    assert not holds(Operator.MATCHES, 123, "1")
    assert not holds(Operator.STARTS_WITH, 12, "1")


def _rule(rule_id: str, effect: Effect, applies: bool, **extra: Any) -> Rule:
    field = "user.yes" if applies else "user.no"
    return Rule(rule_id, effect, Comparison(field, Operator.EXISTS), **extra)


REQUEST = {"user": {"yes": 1}, "constitutional_hash": HASH}


def test_first_applicable_orders_by_priority_then_document_order() -> None:
    rules = (
        _rule("low", Effect.DENY, applies=True, priority=1),
        _rule("tie-first", Effect.ALLOW, applies=True, priority=5),
        _rule("tie-second", Effect.DENY, applies=True, priority=5),
    )
    policy = Policy("p", rules, combining=Combining.FIRST_APPLICABLE)
    assert evaluate(policy, REQUEST, HASH).allow is True


def test_deny_holds_the_reasons_of_every_applicable_deny_rule_whatever_the_combining() -> None:
    rules = (
        _rule("a", Effect.ALLOW, applies=True),
        _rule("d1", Effect.DENY, applies=True, reason="no"),
        _rule("d2", Effect.DENY, applies=True),
        _rule("d3", Effect.DENY, applies=False, reason="never"),
    )
    policy = Policy("p", rules, combining=Combining.PERMIT_OVERRIDES)
    decision = evaluate(policy, REQUEST, HASH)
    assert decision.allow is True
    assert decision.deny == {"no", "denied by rule d2"}


def test_obligations_come_from_applicable_rules_whose_effect_is_the_final_decision() -> None:
    audit, notify = Obligation.of({"type": "audit"}), Obligation.of({"type": "notify"})
    rules = (
        _rule("a", Effect.ALLOW, applies=True, obligations=(audit,)),
        _rule("d", Effect.DENY, applies=True, obligations=(notify,)),
    )
    deny_wins = evaluate(Policy("p", rules), REQUEST, HASH)
    assert deny_wins.obligations == {'{"type":"notify"}'}
    allow_wins = evaluate(Policy("p", rules, combining=Combining.PERMIT_OVERRIDES), REQUEST, HASH)
    assert allow_wins.obligations == {'{"type":"audit"}'}


def test_a_hash_mismatch_denies_keeps_rule_reasons_and_takes_deny_obligations() -> None:
    rules = (
        _rule("a", Effect.ALLOW, applies=True, obligations=(Obligation.of({"type": "audit"}),)),
        _rule(
            "d", Effect.DENY, applies=True, reason="r", obligations=(Obligation.of({"type": "x"}),)
        ),
    )
    policy = Policy("p", rules, combining=Combining.PERMIT_OVERRIDES)
    decision = evaluate(policy, {"user": {"yes": 1}, "constitutional_hash": "0" * 16}, HASH)
    assert decision.allow is False
    assert decision.deny == {CONSTITUTIONAL_HASH_MISMATCH, "r"}
    assert decision.obligations == {'{"type":"x"}'}


def test_no_applicable_rule_gives_the_default() -> None:
    policy = Policy("p", (_rule("d", Effect.DENY, applies=False),), default=Effect.ALLOW)
    assert evaluate(policy, REQUEST, HASH).allow is True


@settings(max_examples=300, deadline=None)
@given(policy=policies(), batch=st.lists(requests(), min_size=1, max_size=5))
def test_compiled_conditions_mean_what_condition_holds_says(
    policy: Policy, batch: list[dict[str, Any]]
) -> None:
    for rule in policy.rules:
        compiled = predicate(rule.when)
        assert [compiled(request) for request in batch] == [
            condition_holds(rule.when, request) for request in batch
        ]
