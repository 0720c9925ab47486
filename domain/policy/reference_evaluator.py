"""The reference meaning of the rule model, in Python: what the generated Rego must decide."""

from __future__ import annotations

from collections.abc import Callable, Sequence
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
    return _lookup(request, _segments(path))


def _lookup(request: Any, segments: tuple[str, ...]) -> Any:
    value = request
    for segment in segments:
        if not isinstance(value, dict) or segment not in value:
            return _ABSENT
        value = value[segment]
    return value


def _in(field: Any, value: Any) -> bool:
    return isinstance(value, list) and any(json_equal(field, item) for item in value)


def _not_in(field: Any, value: Any) -> bool:
    return isinstance(value, list) and not any(json_equal(field, item) for item in value)


def _contains(field: Any, value: Any) -> bool:
    if isinstance(field, list):
        return any(json_equal(item, value) for item in field)
    return isinstance(field, str) and isinstance(value, str) and value in field


def _strings(test: Callable[[str, str], bool]) -> Callable[[Any, Any], bool]:
    """`test` between two strings; false when either is not one."""
    return lambda field, value: (
        isinstance(field, str) and isinstance(value, str) and test(field, value)
    )


def _ordered(test: Callable[[Any, Any], bool]) -> Callable[[Any, Any], bool]:
    """`test` between two numbers or two strings; false otherwise."""
    return lambda field, value: orderable(field, value) and test(field, value)


def _searches(field: str, pattern: str) -> bool:
    return compiled_pattern(pattern).search(field) is not None


# Every valued operator: (field value, comparison value) -> holds. Absent fields never get here.
_COMPARE: dict[Operator, Callable[[Any, Any], bool]] = {
    Operator.EQ: json_equal,
    Operator.NE: lambda field, value: not json_equal(field, value),
    Operator.GT: _ordered(lambda field, value: field > value),
    Operator.GTE: _ordered(lambda field, value: field >= value),
    Operator.LT: _ordered(lambda field, value: field < value),
    Operator.LTE: _ordered(lambda field, value: field <= value),
    Operator.IN: _in,
    Operator.NOT_IN: _not_in,
    Operator.CONTAINS: _contains,
    Operator.STARTS_WITH: _strings(str.startswith),
    Operator.ENDS_WITH: _strings(str.endswith),
    Operator.MATCHES: _strings(_searches),
}


def _compare(op: Operator, field: Any, value: Any) -> bool:
    return _COMPARE[op](field, value)


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


Predicate = Callable[[Any], bool]


def _always(_request: Any) -> bool:
    return True


def predicate(condition: Condition | None) -> Predicate:
    """`condition_holds` compiled once for many requests: the same meaning, checked by tests."""
    if condition is None:
        return _always
    if isinstance(condition, Comparison):
        return _comparison_predicate(condition)
    if isinstance(condition, Not):
        member = predicate(condition.member)
        return lambda request: not member(request)
    members = tuple(predicate(member) for member in condition.members)
    if isinstance(condition, AllOf):

        def all_of(request: Any) -> bool:
            for member in members:  # noqa: SIM110 - a loop: measurably faster than all()
                if not member(request):
                    return False
            return True

        return all_of

    def any_of(request: Any) -> bool:
        for member in members:  # noqa: SIM110 - a loop: measurably faster than any()
            if member(request):
                return True
        return False

    return any_of


def _comparison_predicate(comparison: Comparison) -> Predicate:
    op, value, segments = comparison.op, comparison.value, _segments(comparison.field)
    if op is Operator.EXISTS:
        return lambda request: _lookup(request, segments) is not _ABSENT
    if op is Operator.NOT_EXISTS:
        return lambda request: _lookup(request, segments) is _ABSENT
    compare = _COMPARE[op]
    if comparison.value_field is not None:
        other = _segments(comparison.value_field)

        def dynamic(request: Any) -> bool:
            field, value = _lookup(request, segments), _lookup(request, other)
            return field is not _ABSENT and value is not _ABSENT and compare(field, value)

        return dynamic

    def static(request: Any) -> bool:
        field = _lookup(request, segments)
        return field is not _ABSENT and compare(field, value)

    return static


@dataclass(frozen=True, slots=True)
class _CompiledRule:
    rule: Rule
    holds: Predicate
    obligations: tuple[str, ...]
    rank: int
    """Its place in the deciding order: the applicable rule of lowest rank decides."""
    reason: str | None
    """What it adds to `deny` when applicable (deny rules only)."""


class CompiledPolicy:
    """A policy's conditions compiled once, deciding many requests."""

    def __init__(self, policy: Policy, constitutional_hash: str) -> None:
        self.policy = policy
        self.constitutional_hash = constitutional_hash
        rank = {id(rule): place for place, rule in enumerate(deciding_order(policy))}
        self.rules = [
            _CompiledRule(
                rule,
                predicate(rule.when),
                tuple(canonical_text(item.as_json()) for item in rule.obligations),
                rank.get(id(rule), len(rank)),
                rule.deny_reason if rule.effect is Effect.DENY else None,
            )
            for rule in policy.rules
        ]

    def applicable(self, request: Any) -> set[str]:
        """Ids of the rules whose conditions hold on `request`."""
        return {c.rule.id for c in self.rules if c.holds(request)}

    def hash_matches(self, request: Any) -> bool:
        return (
            isinstance(request, dict)
            and isinstance(request.get("constitutional_hash"), str)
            and request["constitutional_hash"] == self.constitutional_hash
        )

    def decide(self, request: Any) -> Decision:
        return self._decided(
            [c for c in self.rules if c.holds(request)], self.hash_matches(request)
        )

    def decision(self, applicable_ids: set[str], hash_matches: bool) -> Decision:
        """The decision when exactly these rules apply."""
        return self._decided([c for c in self.rules if c.rule.id in applicable_ids], hash_matches)

    def _decided(self, applicable: list[_CompiledRule], hash_matches: bool) -> Decision:
        """The first applicable rule in deciding order decides, else the default; under a hash
        mismatch the decision is deny and the mismatch is a reason."""
        decision = self.policy.default
        if applicable:
            decision = min(applicable, key=_rank).rule.effect
        final = decision if hash_matches else Effect.DENY
        deny = {c.reason for c in applicable if c.reason is not None}
        if not hash_matches:
            deny.add(CONSTITUTIONAL_HASH_MISMATCH)
        obligations = {text for c in applicable if c.rule.effect is final for text in c.obligations}
        return Decision(final is Effect.ALLOW, frozenset(deny), frozenset(obligations))


def _rank(compiled: _CompiledRule) -> int:
    return compiled.rank


def evaluate(policy: Policy, request: Any, constitutional_hash: str) -> Decision:
    """The decision of `policy` on `request` under the guard of `constitutional_hash`."""
    return CompiledPolicy(policy, constitutional_hash).decide(request)


def evaluate_all(
    policy: Policy, requests: Sequence[Any], constitutional_hash: str
) -> list[Decision]:
    """`evaluate` on each request; the conditions are compiled once."""
    compiled = CompiledPolicy(policy, constitutional_hash)
    return [compiled.decide(request) for request in requests]
