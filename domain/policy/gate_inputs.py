"""Requests that exercise a policy, so that the gate proves the Rego on them.

- For every rule the analysis does not prove never applicable: a request that makes it applicable
  (a witness, found by a bounded backtracking search over the rule's condition), and its
  wrong-hash twin where that decides something.
- For every comparison, probes set on the witness of its rule: values that satisfy it and values
  that falsify it (glob and RE2 matches and near misses, prefixes, suffixes, members and
  non-members, numbers and strings at, just above and just below the boundary, "1" for 1).
- For every path the policy reads: absent, `null`, and a value of each JSON type.

A probe is kept once per comparison and label (identical comparisons in several rules share
them), so the number of requests grows with what the policy says, not with its size; it is capped.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from domain.policy.analysis import can_hold, never_applicable
from domain.policy.json_values import canonical_text, is_number
from domain.policy.pattern_witnesses import matching_strings, non_matching_strings
from domain.policy.reference_evaluator import (
    ABSENT,
    comparison_holds,
    lookup,
)
from domain.policy.rule_model import (
    AllOf,
    Comparison,
    Condition,
    Effect,
    Not,
    Operator,
    Policy,
    Rule,
    comparisons,
)
from domain.policy.work_budget import NO_DEADLINE, Deadline

WRONG_HASH = "0000000000000000"
DEFAULT_MAX_INPUTS = 2000
_SEARCH_STEPS = 400  # candidate requests tried per witness before giving up
_FALSE_PROBES = 1  # falsifying probes per comparison: the boundary or nearest miss
Assignment = dict[str, Any]
Goal = tuple[Condition, bool]


@dataclass(frozen=True, slots=True)
class GateInputs:
    requests: tuple[dict[str, Any], ...]
    unreached_rules: tuple[str, ...]
    """Rules not proven never applicable that no request makes applicable: unproven."""
    never_applicable_rules: tuple[str, ...] = ()
    """Rules whose condition the analysis proves unsatisfiable: nothing to reach."""
    uncovered_branches: tuple[str, ...] = ()
    capped: bool = False
    """The cap on inputs stopped the generation before it was complete."""


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
    if isinstance(value, str) and value in ("true", "false"):
        return value == "true"
    return ABSENT


def _non_member(members: list[Any]) -> Any:
    numbers = [item for item in members if is_number(item)]
    if numbers and len(numbers) == len(members):
        return max(numbers) + 1
    texts = {item for item in members if isinstance(item, str)}
    candidate = "~none"
    while candidate in texts:
        candidate += "~"
    return candidate


def _ordering_probes(value: Any) -> list[tuple[str, Any]]:
    if is_number(value):
        near = 0.5 if isinstance(value, int) else abs(value) / 2 or 0.5
        return [
            ("at", value),
            ("just-below", value - near),
            ("just-above", value + near),
            ("below", value - 1),
            ("above", value + 1),
            ("twin", str(value)),
        ]
    if isinstance(value, str):
        probes = [("at", value), ("just-above", value + " ")]
        return [*probes, ("below", value[:-1])] if value else probes
    return []


def _string_probes(op: Operator, value: Any) -> list[tuple[str, Any]]:
    if not isinstance(value, str):
        return []
    if op is Operator.STARTS_WITH:
        probes = [("exact", value), ("shorter", value[:-1]), ("shifted", "~" + value)]
        probes.append(("longer", value + "-tail"))
    elif op is Operator.ENDS_WITH:
        probes = [("exact", value), ("shorter", value[1:]), ("shifted", value + "~")]
        probes.append(("longer", "head-" + value))
    else:
        matches = matching_strings(value)
        misses = non_matching_strings(value)
        probes = [(f"match-{i}", text) for i, text in enumerate(matches[:1])]
        probes += [(f"miss-{i}", text) for i, text in enumerate(misses[:2])]
        probes += [(f"match-{i}", text) for i, text in enumerate(matches[1:3], start=1)]
    return [*probes, ("non-string", 0)]


def _value_probes(c: Comparison) -> list[tuple[str, Any]]:  # noqa: PLR0911 - one per operator
    """(label, field value) pairs that make `c` true and false, boundaries included, the most
    telling first: the gate takes the first few that change the comparison's outcome."""
    op, value = c.op, c.value
    if op is Operator.EXISTS:
        return [("present", "present"), ("absent", ABSENT), ("null", None)]
    if op is Operator.NOT_EXISTS:
        return [("absent", ABSENT), ("present", "present"), ("null", None)]
    if op in (Operator.EQ, Operator.NE):
        probes = [("equal", value), ("twin", _twin(value)), ("other", _other(value))]
        if isinstance(value, int) and not isinstance(value, bool):
            probes.append(("same-number", float(value)))
        return [(label, item) for label, item in probes if item is not ABSENT]
    if op in (Operator.GT, Operator.GTE, Operator.LT, Operator.LTE):
        return _ordering_probes(value)
    if op in (Operator.IN, Operator.NOT_IN):
        if not isinstance(value, list):
            return []
        twin = _twin(value[0]) if value else ABSENT
        probes = [(f"member-{i}", item) for i, item in enumerate(value[:1])]
        probes.append(("non-member", _non_member(value)))
        probes += [("twin", twin)] if twin is not ABSENT else []
        return probes + [(f"member-{i}", item) for i, item in enumerate(value[1:3], start=1)]
    if op is Operator.CONTAINS:
        probes = [("list-with", [value]), ("list-without", [_other(value)])]
        if isinstance(value, str):
            probes += [("substring", f"x{value}y"), ("no-substring", value[:-1] or "~")]
        return probes
    return _string_probes(op, value)


_DYNAMIC_TRUE: dict[Operator, list[tuple[Any, Any]]] = {
    Operator.EQ: [("a", "a"), (1, 1.0)],
    Operator.NE: [("a", "b"), (1, "1")],
    Operator.GT: [(2, 1), ("b", "a")],
    Operator.GTE: [(1, 1), ("a", "a")],
    Operator.LT: [(1, 2), ("a", "b")],
    Operator.LTE: [("a", "a"), (1, 1.0)],
    Operator.IN: [("a", ["a"])],
    Operator.NOT_IN: [("a", ["b"])],
    Operator.CONTAINS: [(["a"], "a"), ("xay", "a")],
    Operator.STARTS_WITH: [("ab", "a")],
    Operator.ENDS_WITH: [("ba", "a")],
    Operator.MATCHES: [("ab", "^a")],
}


def _probes(c: Comparison) -> list[tuple[str, Assignment]]:
    """(label, assignment) pairs; an assignment maps paths to values (ABSENT removes a path)."""
    if c.value_field is None:
        return [(label, {c.field: item}) for label, item in _value_probes(c)]
    found: list[tuple[str, Assignment]] = []
    for index, (left, right) in enumerate(_DYNAMIC_TRUE.get(c.op, [])):
        found.append((f"pair-{index}", {c.field: left, c.value_field: right}))
    found.append(("other-type", {c.field: 7, c.value_field: "7"}))
    found.append(("other-absent", {c.value_field: ABSENT}))
    return found


def _fitted(c: Comparison, want: bool, current: Any) -> list[Assignment]:
    """Values built from the field's current value, for a second comparison on the same field."""
    if c.value_field is not None or not isinstance(current, str):
        return []
    value = c.value
    if want and isinstance(value, str):
        if c.op is Operator.STARTS_WITH:
            return [{c.field: value + current}]
        if c.op in (Operator.ENDS_WITH, Operator.CONTAINS):
            return [{c.field: current + value}]
    return []


def _apply(request: dict[str, Any], assignment: Assignment) -> dict[str, Any]:
    """`request` with each path of `assignment` set (ABSENT removes it). Requests are never
    changed in place: only the objects along a changed path are copied, the rest is shared."""
    result = dict(request)
    for path, value in assignment.items():
        *parents, last = path.split(".")
        node = result
        for segment in parents:
            child = node.get(segment)
            if not isinstance(child, dict):
                if value is ABSENT:
                    break
                child = {}
            else:
                child = dict(child)
            node[segment] = child
            node = child
        else:
            if value is ABSENT:
                node.pop(last, None)
            else:
                node[last] = value
    return result


class _Search:
    """A witness: a request that gives each goal its wanted truth, by depth-first search over
    the probes of each comparison, keeping every comparison already settled as it was."""

    def __init__(self, deadline: Deadline) -> None:
        self.steps = _SEARCH_STEPS
        self.deadline = deadline

    def solve(self, goals: list[Goal], request: dict[str, Any]) -> dict[str, Any] | None:
        self.steps = _SEARCH_STEPS
        self.deadline.check("gate input generation")
        return self._solve(tuple(goals), (), request)

    def _solve(
        self,
        goals: tuple[Goal, ...],
        settled: tuple[tuple[Comparison, bool], ...],
        request: dict[str, Any],
    ) -> dict[str, Any] | None:
        if not goals:
            return request
        (condition, want), rest = goals[0], goals[1:]
        if isinstance(condition, Comparison):
            return self._settle(condition, want, rest, settled, request)
        if isinstance(condition, Not):
            return self._solve(((condition.member, not want), *rest), settled, request)
        members = tuple((member, want) for member in condition.members)
        if isinstance(condition, AllOf) == want:  # every member must give `want`
            return self._solve((*members, *rest), settled, request)
        for member in members:  # one member giving `want` is enough
            found = self._solve((member, *rest), settled, request)
            if found is not None:
                return found
        return None

    def _settle(
        self,
        comparison: Comparison,
        want: bool,
        rest: tuple[Goal, ...],
        settled: tuple[tuple[Comparison, bool], ...],
        request: dict[str, Any],
    ) -> dict[str, Any] | None:
        """The current value first, then each probe; a choice that breaks a settled comparison
        or leaves the rest unsolvable is undone (backtracking)."""
        done = (*settled, (comparison, want))
        if comparison_holds(comparison, request) is want:
            found = self._solve(rest, done, request)
            if found is not None:
                return found
        current = lookup(request, comparison.field)
        cases = [case for _, case in _probes(comparison)] + _fitted(comparison, want, current)
        for case in cases:
            if self.steps <= 0:
                return None
            self.steps -= 1
            candidate = _apply(request, case)
            if comparison_holds(comparison, candidate) is not want:
                continue
            if all(comparison_holds(c, candidate) is w for c, w in settled):
                found = self._solve(rest, done, candidate)
                if found is not None:
                    return found
        return None


_KIND_VALUES: tuple[tuple[str, Any], ...] = (
    ("null", None),
    ("boolean", True),
    ("number", 0),
    ("string", "~"),
    ("array", []),
    ("object", {}),
)


def _describe(c: Comparison) -> str:
    if c.op in (Operator.EXISTS, Operator.NOT_EXISTS):
        return f"{c.field} {c.op.value}"
    other = c.value_field if c.value_field is not None else canonical_text(c.value)
    return f"{c.field} {c.op.value} {other}"


class _Collector:
    """The requests so far, without duplicates, up to the cap; and what they were meant to cover."""

    def __init__(self, max_inputs: int, paths: list[str]) -> None:
        self.max_inputs = max_inputs
        self.requests: dict[str, dict[str, Any]] = {}
        self.capped = False
        self.probed: set[str] = set()
        self.outcomes: dict[str, set[bool]] = {}
        self.missing_kinds = {path: list(_KIND_VALUES) for path in paths}
        self.descriptions: dict[int, str] = {}

    def add(self, request: dict[str, Any]) -> bool:
        key = json.dumps(request, sort_keys=True)
        if key in self.requests:
            return True
        if len(self.requests) >= self.max_inputs:
            self.capped = True
            return False
        self.requests[key] = request
        return True

    def add_probe(
        self, context: dict[str, Any], case: Assignment, read: set[str]
    ) -> dict[str, Any] | None:
        """`case` set on `context`; paths that neither the probed rule nor the case touch carry
        a JSON kind they have not held yet. None when the cap is reached."""
        touched = read | set(case)
        riders = {
            path: kinds[0][1]
            for path, kinds in self.missing_kinds.items()
            if kinds and not any(_overlap(path, other) for other in touched)
        }
        candidate = _apply(context, {**case, **riders})
        if not self.add(candidate):
            return None
        for path in riders:
            self.missing_kinds[path].pop(0)
        return candidate

    def observe(self, c: Comparison, request: dict[str, Any]) -> None:
        self.outcomes.setdefault(self.describe(c), set()).add(comparison_holds(c, request))

    def describe(self, c: Comparison) -> str:
        """`_describe`, once per comparison object (its value may be long)."""
        text = self.descriptions.get(id(c))
        if text is None:
            text = self.descriptions[id(c)] = _describe(c)
        return text


def gate_inputs(
    policy: Policy,
    constitutional_hash: str,
    *,
    max_inputs: int = DEFAULT_MAX_INPUTS,
    deadline: Deadline = NO_DEADLINE,
) -> GateInputs:
    """The requests the gate evaluates both sides on, with what they failed to cover."""
    paths = list(dict.fromkeys(p for rule in policy.rules for p in _paths_read(rule)))
    collector = _Collector(max(2, max_inputs), paths)
    search = _Search(deadline)
    base = {"constitutional_hash": constitutional_hash}
    collector.add(base)
    collector.add({"constitutional_hash": WRONG_HASH})
    witnesses: dict[str, dict[str, Any]] = {}
    unreached: list[str] = []
    never: list[str] = []
    guard_cases: set[tuple[Effect, bool]] = set()
    for rule in policy.rules:
        if never_applicable(rule):
            never.append(rule.id)
            continue
        witness = search.solve([(rule.when, True)] if rule.when is not None else [], dict(base))
        if witness is None or not collector.add(witness):
            unreached.append(rule.id)
            continue
        witnesses[rule.id] = witness
        for c in comparisons(rule.when):
            collector.observe(c, witness)
        # Under a hash mismatch the decision is deny: an applicable allow rule must lose, its
        # obligations must go, and those of an applicable deny rule must stay. One wrong-hash twin
        # per kind of rule (effect, with or without obligations) checks the guard's every branch.
        kind = (rule.effect, bool(rule.obligations))
        twin = {**witness, "constitutional_hash": WRONG_HASH}
        if kind != (Effect.DENY, False) and kind not in guard_cases and collector.add(twin):
            guard_cases.add(kind)
    _probe_comparisons(policy, witnesses, base, collector, deadline)
    _probe_kinds(base, collector)
    return GateInputs(
        tuple(collector.requests.values()),
        tuple(unreached),
        tuple(never),
        tuple(_uncovered(policy, set(never), collector)),
        collector.capped,
    )


def _probe_comparisons(
    policy: Policy,
    witnesses: dict[str, dict[str, Any]],
    base: dict[str, Any],
    collector: _Collector,
    deadline: Deadline,
) -> None:
    """On the witness of its rule, each comparison (once, however many rules hold it): a value
    that makes it true if the witness does not, the first falsifying probe (the boundary), and
    the field absent where absence means something else than a mismatch (`ne`, `not_in`,
    `exists`, `not_exists`, and every comparison under a `not`)."""
    for rule in policy.rules:
        deadline.check("gate input generation")
        context = witnesses.get(rule.id, base)
        read = set(_paths_read(rule))
        for c, negated in _polarities(rule.when, negated=False):
            described = collector.describe(c)
            if described in collector.probed:
                continue
            collector.probed.add(described)
            present = lookup(context, c.field) is not ABSENT
            need_true = not comparison_holds(c, context)
            # false in its rule's witness already (a negated or alternative comparison): the
            # witness is its falsifying case when the field is there; a true one is missing
            falsified = int(need_true and present)
            for _, case in _probes(c):
                if falsified >= _FALSE_PROBES and not need_true:
                    break
                candidate = _apply(context, case)
                outcome = comparison_holds(c, candidate)
                if (outcome and not need_true) or (not outcome and falsified >= _FALSE_PROBES):
                    continue
                if collector.add_probe(context, case, read) is None:
                    return
                collector.observe(c, candidate)
                need_true = need_true and not outcome
                falsified += not outcome
            absence_matters = negated or c.op in _ABSENCE_OPERATORS
            if absence_matters and present:
                absent = collector.add_probe(context, {c.field: ABSENT}, read)
                if absent is None:
                    return
                collector.observe(c, absent)


_ABSENCE_OPERATORS = frozenset({Operator.NE, Operator.NOT_IN, Operator.EXISTS, Operator.NOT_EXISTS})


def _polarities(condition: Condition | None, *, negated: bool) -> list[tuple[Comparison, bool]]:
    """Every comparison, with whether an odd number of `not`s is above it."""
    if condition is None:
        return []
    if isinstance(condition, Comparison):
        return [(condition, negated)]
    if isinstance(condition, Not):
        return _polarities(condition.member, negated=not negated)
    return [found for m in condition.members for found in _polarities(m, negated=negated)]


def _probe_kinds(base: dict[str, Any], collector: _Collector) -> None:
    """Every path read is absent in the empty request, and holds null, a boolean, a number, a
    string, an array and an object in some request: those values ride on the probes at the
    paths the probed rule does not read (`add_probe`); what is left goes into requests of their
    own, each path with its next missing kind."""
    missing = collector.missing_kinds
    while any(missing.values()):
        rest = {path: kinds.pop(0)[1] for path, kinds in missing.items() if kinds}
        if not collector.add(_apply(base, rest)):
            return


def _paths_read(rule: Rule) -> list[str]:
    found = (path for c in comparisons(rule.when) for path in (c.field, c.value_field) if path)
    return list(dict.fromkeys(found))


def _overlap(one: str, other: str) -> bool:
    """One path is the other or lies inside it: setting one changes the other."""
    return one == other or one.startswith(other + ".") or other.startswith(one + ".")


def _uncovered(policy: Policy, never: set[str], collector: _Collector) -> list[str]:
    """Each comparison (identical ones in several rules once) never made true, or never false
    (a comparison is false somewhere always: on an absent field, or a present one)."""
    missing: dict[tuple[str, bool], list[str]] = {}
    for rule in policy.rules:
        if rule.id in never:
            continue
        for c in comparisons(rule.when):
            described = collector.describe(c)
            seen = collector.outcomes.get(described, set())
            for outcome in (True, False):
                if outcome not in seen and (not outcome or can_hold(c)):
                    rules = missing.setdefault((described, outcome), [])
                    if rule.id not in rules:
                        rules.append(rule.id)
    return [
        f"{described} never {'true' if outcome else 'false'} (rule {', '.join(rules)})"
        for (described, outcome), rules in missing.items()
    ]
