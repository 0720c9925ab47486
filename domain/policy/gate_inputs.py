"""Requests that exercise a policy: every rule applicable at least once, every comparison both
true and false, the constitutional guard both ways. Bounded: a few requests per comparison."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from domain.policy.json_values import canonical_text, is_number
from domain.policy.reference_evaluator import (
    ABSENT as _ABSENT_VALUE,
)
from domain.policy.reference_evaluator import (
    InvalidPattern,
    comparison_holds,
    compiled_pattern,
    condition_holds,
    lookup,
)
from domain.policy.rule_model import (
    AllOf,
    AnyOf,
    Comparison,
    Condition,
    Effect,
    Not,
    Operator,
    Policy,
)

ABSENT: Any = object()
WRONG_HASH = "0000000000000000"
Assignment = dict[str, Any]


def _other(value: Any) -> Any:
    """A JSON value of the same type that is not equal to `value`."""
    if isinstance(value, bool):
        return not value
    if is_number(value):
        return value + 1
    if isinstance(value, str):
        return value + "~x"
    if isinstance(value, list):
        return [*value, "~x"]
    if isinstance(value, dict):
        return {**value, "~x": 1}
    return "~x"


def _twin(value: Any) -> Any:
    """A value of another type that a loose comparison would mistake for `value` ("1" vs 1)."""
    if isinstance(value, bool):
        return 1 if value else 0
    if is_number(value):
        return str(value)
    if isinstance(value, str) and value.lstrip("-").isdigit() and len(value) < 12:
        return int(value)
    return ABSENT


def _pattern_samples(pattern: str) -> list[str]:
    literal: list[str] = []
    index = 0
    while index < len(pattern):
        char = pattern[index]
        if char == "\\" and index + 1 < len(pattern):
            escaped = pattern[index + 1]
            literal.append({"d": "0", "w": "a", "s": " "}.get(escaped, escaped))
            index += 2
            continue
        if char == "[":
            close = pattern.find("]", index + 2)
            inner = pattern[index + 1 : close if close > 0 else len(pattern)].lstrip("^")
            literal.append(inner[:1] or "a")
            index = close + 1 if close > 0 else len(pattern)
            continue
        if char == ".":
            literal.append("a")
        elif char not in "^$()*+?|{}":
            literal.append(char)
        index += 1
    text = "".join(literal)
    return [text, text + text, "", "a", "0", "A-1", "test", "~", "\n"]


def _pattern_case(pattern: str, want: bool) -> Any:
    try:
        compiled = compiled_pattern(pattern)
    except InvalidPattern:
        return ABSENT
    for sample in _pattern_samples(pattern):
        if (compiled.search(sample) is not None) is want:
            return sample
    return ABSENT


def _true_cases(c: Comparison) -> list[Assignment]:  # noqa: C901, PLR0911, PLR0912
    op, value, f = c.op, c.value, c.field
    if op is Operator.EXISTS:
        return [{f: "present"}]
    if op is Operator.NOT_EXISTS:
        return [{f: ABSENT}]
    if c.value_field is not None:
        g = c.value_field
        dynamic_cases: dict[Operator, list[Assignment]] = {
            Operator.EQ: [{f: "a", g: "a"}, {f: 1, g: 1.0}],
            Operator.NE: [{f: "a", g: "b"}],
            Operator.GT: [{f: 2, g: 1}, {f: "b", g: "a"}],
            Operator.GTE: [{f: 1, g: 1}],
            Operator.LT: [{f: 1, g: 2}],
            Operator.LTE: [{f: "a", g: "a"}],
            Operator.IN: [{f: "a", g: ["a"]}],
            Operator.NOT_IN: [{f: "a", g: ["b"]}],
            Operator.CONTAINS: [{f: ["a"], g: "a"}, {f: "xay", g: "a"}],
            Operator.STARTS_WITH: [{f: "ab", g: "a"}],
            Operator.ENDS_WITH: [{f: "ba", g: "a"}],
        }
        return dynamic_cases.get(op, [])
    if op is Operator.EQ:
        return [{f: value}]
    if op is Operator.NE:
        return [{f: _other(value)}]
    if op in (Operator.GTE, Operator.LTE) and (is_number(value) or isinstance(value, str)):
        return [{f: value}]
    if op is Operator.GT and (is_number(value) or isinstance(value, str)):
        return [{f: value + 1 if is_number(value) else value + "a"}]
    if op is Operator.LT and is_number(value):
        return [{f: value - 1}]
    if op is Operator.LT and isinstance(value, str) and value:
        return [{f: ""}]
    if op is Operator.IN and isinstance(value, list) and value:
        return [{f: value[0]}]
    if op is Operator.NOT_IN and isinstance(value, list):
        return [{f: "~absent-from-list"}]
    if op is Operator.CONTAINS:
        return [{f: [value]}] + ([{f: f"x{value}y"}] if isinstance(value, str) else [])
    if op is Operator.STARTS_WITH and isinstance(value, str):
        return [{f: value + "-tail"}]
    if op is Operator.ENDS_WITH and isinstance(value, str):
        return [{f: "head-" + value}]
    if op is Operator.MATCHES and isinstance(value, str):
        sample = _pattern_case(value, want=True)
        return [] if sample is ABSENT else [{f: sample}]
    return []


def _false_cases(c: Comparison) -> list[Assignment]:
    op, value, f = c.op, c.value, c.field
    if op is Operator.NOT_EXISTS:
        return [{f: "present"}]
    cases: list[Assignment] = [{f: ABSENT}]
    if c.value_field is not None:
        return [{c.value_field: ABSENT}, *[{**case, f: 7} for case in _true_cases(c)[:1]]]
    near_miss: Any = ABSENT
    if op in (Operator.EQ, Operator.GTE, Operator.LTE, Operator.STARTS_WITH, Operator.ENDS_WITH):
        near_miss = _other(value) if op is Operator.EQ else _twin(value)
    elif op is Operator.NE or op is Operator.GT or op is Operator.LT:
        near_miss = value
    elif op is Operator.IN:
        near_miss = _twin(value[0]) if isinstance(value, list) and value else "~x"
    elif op is Operator.NOT_IN and isinstance(value, list) and value:
        near_miss = value[0]
    elif op is Operator.CONTAINS:
        near_miss = [_twin(value)] if _twin(value) is not ABSENT else []
    elif op is Operator.MATCHES and isinstance(value, str):
        near_miss = _pattern_case(value, want=False)
    if near_miss is not ABSENT:
        cases.append({f: near_miss})
    if op in (Operator.EQ, Operator.NE):
        twin = _twin(value)
        if twin is not ABSENT:
            cases.append({f: twin})
    return cases


def _set_path(request: dict[str, Any], path: str, value: Any) -> None:
    *parents, last = path.split(".")
    node = request
    for segment in parents:
        child = node.get(segment)
        if not isinstance(child, dict):
            if value is ABSENT:
                return
            child = {}
            node[segment] = child
        node = child
    if value is ABSENT:
        node.pop(last, None)
    else:
        node[last] = _copy(value)


def _copy(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _copy(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_copy(item) for item in value]
    return value


def _apply(request: dict[str, Any], assignment: Assignment) -> dict[str, Any]:
    result: dict[str, Any] = _copy(request)
    for path, value in assignment.items():
        _set_path(result, path, value)
    return result


def _witness(condition: Condition | None, want: bool, request: dict[str, Any]) -> dict[str, Any]:
    """Best effort: `request` changed so that `condition` gives `want`."""
    if condition is None:
        return request
    if isinstance(condition, Not):
        return _witness(condition.member, not want, request)
    if isinstance(condition, Comparison):
        cases = _true_cases(condition) if want else _false_cases(condition)
        for case in cases:
            candidate = _apply(request, case)
            if comparison_holds(condition, candidate) is want:
                return candidate
        return request
    conjunctive = isinstance(condition, AllOf) == want
    members = condition.members if conjunctive else condition.members[:1]
    for member in members:
        request = _witness(member, want, request)
    if not conjunctive and condition.members and condition_holds(condition, request) is not want:
        for member in condition.members[1:]:
            candidate = _witness(member, want, request)
            if condition_holds(condition, candidate) is want:
                return candidate
    return request


def _comparisons_of(condition: Condition | None) -> Iterable[Comparison]:
    if isinstance(condition, Comparison):
        yield condition
    elif isinstance(condition, Not):
        yield from _comparisons_of(condition.member)
    elif isinstance(condition, AllOf | AnyOf):
        for member in condition.members:
            yield from _comparisons_of(member)


@dataclass(frozen=True, slots=True)
class GateInputs:
    requests: tuple[dict[str, Any], ...]
    unreached_rules: tuple[str, ...]
    uncovered_branches: tuple[str, ...]


class _Coverage:
    """What the chosen requests exercise: rules applicable, each comparison true, false with its
    field present, and false with it absent. A candidate request is kept only if it adds to it."""

    def __init__(self, policy: Policy) -> None:
        self.policy = policy
        self.tests = [
            (rule.id, comparison)
            for rule in policy.rules
            for comparison in _comparisons_of(rule.when)
        ]
        self.seen: set[tuple[object, ...]] = set()

    def facts(self, request: dict[str, Any]) -> set[tuple[object, ...]]:
        found: set[tuple[object, ...]] = set()
        for index, (_, comparison) in enumerate(self.tests):
            present = lookup(request, comparison.field) is not _ABSENT_VALUE
            found.add(("test", index, comparison_holds(comparison, request), present))
        return found

    def offer(self, request: dict[str, Any]) -> bool:
        """Record what `request` covers; True if it covers something new."""
        new = self.facts(request) - self.seen
        self.seen |= new
        return bool(new)

    def complete(self, index: int) -> bool:
        """True seen, and false seen both with the field present and absent."""
        seen = self.seen
        holds = ("test", index, True, True) in seen or ("test", index, True, False) in seen
        return (
            holds and ("test", index, False, True) in seen and ("test", index, False, False) in seen
        )

    def uncovered_branches(self) -> list[str]:
        missing: list[str] = []
        for index, (rule_id, comparison) in enumerate(self.tests):
            for outcome in (True, False):
                if not any(
                    ("test", index, outcome, present) in self.seen for present in (True, False)
                ):
                    state = "true" if outcome else "false"
                    missing.append(
                        f"rule {rule_id}: {comparison.field} {comparison.op.value} never {state}"
                    )
        return missing


def gate_inputs(policy: Policy, constitutional_hash: str) -> GateInputs:
    """The requests the gate evaluates both sides on, with what they failed to cover."""
    requests: dict[str, dict[str, Any]] = {}
    coverage = _Coverage(policy)

    def add(request: dict[str, Any], *, always: bool = False) -> None:
        key = canonical_text(request)
        if key not in requests and (coverage.offer(request) or always):
            requests[key] = request

    base = {"constitutional_hash": constitutional_hash}
    add(base, always=True)
    add({"constitutional_hash": WRONG_HASH}, always=True)
    guard_checked_allow = False
    unreached: list[str] = []
    test_index = 0
    for rule in policy.rules:
        witness = _witness(rule.when, want=True, request=dict(base))
        if condition_holds(rule.when, witness):
            add(witness, always=True)
            # Under a hash mismatch the decision is deny: an applicable allow rule must lose, and
            # the obligations of applicable deny rules must appear.
            if rule.effect is Effect.DENY:
                needs_guard_case = bool(rule.obligations)
            else:
                needs_guard_case = not guard_checked_allow
            if needs_guard_case:
                add({**witness, "constitutional_hash": WRONG_HASH}, always=True)
                guard_checked_allow = guard_checked_allow or rule.effect is Effect.ALLOW
        else:
            unreached.append(rule.id)
        for comparison in _comparisons_of(rule.when):
            if not coverage.complete(test_index):
                for case in _false_cases(comparison) + _true_cases(comparison)[:1]:
                    add(_apply(witness, case))
            test_index += 1
    return GateInputs(
        tuple(requests.values()),
        tuple(unreached),
        tuple(coverage.uncovered_branches()),
    )
