"""The reference meaning of the rule model, in Python: what the generated Rego must decide."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import re2

from domain.policy.json_values import canonical_text, json_equal, orderable
from domain.policy.rule_model import (
    AllOf,
    AnyOf,
    Comparison,
    Condition,
    Effect,
    Not,
    Operator,
    Policy,
    Rule,
)
from domain.policy.rule_order import deciding_order

CONSTITUTIONAL_HASH_MISMATCH = "constitutional hash mismatch"
ABSENT: Any = object()
_ABSENT = ABSENT


@dataclass(frozen=True, slots=True)
class Decision:
    """A decision as the Rego module exposes it; obligations as canonical JSON texts."""

    allow: bool
    deny: frozenset[str]
    obligations: frozenset[str]

    def as_json(self) -> dict[str, Any]:
        return {
            "allow": self.allow,
            "deny": sorted(self.deny),
            "obligations": sorted(self.obligations),
        }


class InvalidPattern(ValueError):
    """A `matches` pattern RE2 cannot compile."""


@lru_cache(maxsize=4096)
def compiled_pattern(pattern: str) -> Any:
    options = re2.Options()
    options.log_errors = False
    try:
        return re2.compile(pattern, options=options)
    except re2.error as error:
        reason = error.args[0] if error.args else error
        text = reason.decode(errors="replace") if isinstance(reason, bytes) else str(reason)
        raise InvalidPattern(f"{pattern!r}: {text}") from None


@lru_cache(maxsize=8192)
def _segments(path: str) -> tuple[str, ...]:
    return tuple(path.split("."))


def lookup(request: Any, path: str) -> Any:
    """The value at a dotted path, or _ABSENT; only objects are descended into."""
    value = request
    for segment in _segments(path):
        if not isinstance(value, dict) or segment not in value:
            return _ABSENT
        value = value[segment]
    return value


def _compare(op: Operator, field: Any, value: Any) -> bool:  # noqa: C901, PLR0911, PLR0912
    if op is Operator.EQ:
        return json_equal(field, value)
    if op is Operator.NE:
        return not json_equal(field, value)
    if op in (Operator.GT, Operator.GTE, Operator.LT, Operator.LTE):
        if not orderable(field, value):
            return False
        if op is Operator.GT:
            return bool(field > value)
        if op is Operator.GTE:
            return bool(field >= value)
        if op is Operator.LT:
            return bool(field < value)
        return bool(field <= value)
    if op is Operator.IN:
        return isinstance(value, list) and any(json_equal(field, item) for item in value)
    if op is Operator.NOT_IN:
        return isinstance(value, list) and not any(json_equal(field, item) for item in value)
    if op is Operator.CONTAINS:
        if isinstance(field, list):
            return any(json_equal(item, value) for item in field)
        return isinstance(field, str) and isinstance(value, str) and value in field
    if not isinstance(field, str) or not isinstance(value, str):
        return False
    if op is Operator.STARTS_WITH:
        return field.startswith(value)
    if op is Operator.ENDS_WITH:
        return field.endswith(value)
    if op is Operator.MATCHES:
        return compiled_pattern(value).search(field) is not None
    raise ValueError(f"operator {op} has no comparison")


def comparison_holds(comparison: Comparison, request: Any) -> bool:
    field = lookup(request, comparison.field)
    if comparison.op is Operator.EXISTS:
        return field is not _ABSENT
    if comparison.op is Operator.NOT_EXISTS:
        return field is _ABSENT
    if field is _ABSENT:
        return False
    if comparison.value_field is not None:
        value = lookup(request, comparison.value_field)
        if value is _ABSENT:
            return False
    else:
        value = comparison.value
    return _compare(comparison.op, field, value)


def condition_holds(condition: Condition | None, request: Any) -> bool:
    if condition is None:
        return True
    if isinstance(condition, Comparison):
        return comparison_holds(condition, request)
    if isinstance(condition, Not):
        return not condition_holds(condition.member, request)
    if isinstance(condition, AllOf):
        return all(condition_holds(member, request) for member in condition.members)
    if isinstance(condition, AnyOf):
        return any(condition_holds(member, request) for member in condition.members)
    raise TypeError(f"not a condition: {condition!r}")


def rule_decision(policy: Policy, applicable: list[Rule]) -> Effect:
    applicable_ids = {rule.id for rule in applicable}
    for rule in deciding_order(policy):
        if rule.id in applicable_ids:
            return rule.effect
    return policy.default


def evaluate(policy: Policy, request: Any, constitutional_hash: str) -> Decision:
    """The decision of `policy` on `request` under the guard of `constitutional_hash`."""
    applicable = [rule for rule in policy.rules if condition_holds(rule.when, request)]
    decision = rule_decision(policy, applicable)
    hash_matches = (
        isinstance(request, dict)
        and isinstance(request.get("constitutional_hash"), str)
        and request["constitutional_hash"] == constitutional_hash
    )
    final = decision if hash_matches else Effect.DENY
    deny = {rule.deny_reason for rule in applicable if rule.effect is Effect.DENY}
    if not hash_matches:
        deny.add(CONSTITUTIONAL_HASH_MISMATCH)
    obligations = {
        canonical_text(obligation.as_json())
        for rule in applicable
        if rule.effect is final
        for obligation in rule.obligations
    }
    return Decision(final is Effect.ALLOW, frozenset(deny), frozenset(obligations))
