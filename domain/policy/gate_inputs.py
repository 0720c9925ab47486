"""Requests that exercise a policy, so that the gate proves the Rego on them.

- For every rule the analysis does not prove never applicable: a request that makes it applicable
  (a witness, found by a bounded backtracking search over the rule's condition), and a wrong-hash
  twin for each kind of rule (allow or deny, with or without obligations).
- For every comparison (once, however many rules hold it), probes set on the witness of its rule
  (`gate_probes`): a value that makes it true when the witness does not, its boundary or nearest
  miss, and the field absent where absence means something else than a mismatch.
- For every path the policy reads: absent, `null`, and a value of each JSON type, riding on the
  other requests where the probed rule does not read the path.

The number of requests grows with what the policy says; it is capped, and a deadline is checked.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import msgspec

from domain.policy.analysis import can_hold, never_applicable
from domain.policy.gate_probes import Assignment, fitted, probes
from domain.policy.json_values import canonical_text
from domain.policy.limits import DEFAULT_LIMITS
from domain.policy.reference_evaluator import (
    ABSENT,
    Predicate,
    condition_holds,
    lookup,
    predicate,
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
DEFAULT_MAX_INPUTS = DEFAULT_LIMITS.gate_inputs
_SEARCH_STEPS = 400  # candidate requests tried per witness before giving up
_FALSE_PROBES = 1  # falsifying probes per comparison: the boundary or nearest miss
Goal = tuple[Condition, bool]


class GateRequest(dict[str, Any]):
    """A generated request with its JSON text (keys sorted), written once when the generation
    told it apart from the others; an engine may send that text instead of serializing the
    request again. Like every generated request it is never changed after it is made."""

    __slots__ = ("json_text",)

    def __init__(self, request: dict[str, Any], json_text: str) -> None:
        super().__init__(request)
        self.json_text = json_text


def request_json(request: dict[str, Any]) -> str:
    """The JSON text of a request: the one a GateRequest carries, else written now."""
    if type(request) is GateRequest:
        return request.json_text
    return json.dumps(request)


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


class _Truths:
    """Each comparison's meaning (`comparison_holds`) compiled once, for the many requests the
    generation tries it on."""

    def __init__(self) -> None:
        self.compiled: dict[int, tuple[Comparison, Predicate]] = {}

    def holds(self, comparison: Comparison, request: dict[str, Any]) -> bool:
        found = self.compiled.get(id(comparison))
        if found is None:
            found = self.compiled[id(comparison)] = (comparison, predicate(comparison))
        return found[1](request)


class _Search:
    """A witness: a request that gives each goal its wanted truth, by depth-first search over
    the probes of each comparison, keeping every comparison already settled as it was."""

    def __init__(self, deadline: Deadline, truths: _Truths) -> None:
        self.steps = _SEARCH_STEPS
        self.deadline = deadline
        self.holds = truths.holds

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
        if self.holds(comparison, request) is want:
            found = self._solve(rest, done, request)
            if found is not None:
                return found
        current = lookup(request, comparison.field)
        cases = [case for _, case in probes(comparison)] + fitted(comparison, want, current)
        for case in cases:
            if self.steps <= 0:
                return None
            self.steps -= 1
            candidate = _apply(request, case)
            if self.holds(comparison, candidate) is not want:
                continue
            if all(self.holds(c, candidate) is w for c, w in settled):
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


_encode_sorted = msgspec.json.Encoder(order="sorted").encode


def _compact_text(request: dict[str, Any]) -> str:
    """A request's JSON text, keys sorted (msgspec: over ten times faster than `json`)."""
    return _encode_sorted(request).decode()


def _python_text(request: dict[str, Any]) -> str:
    """The same for a request that may hold a non-finite number: `json` writes it as such
    (and the engine refuses it), where msgspec would write `null`, another request."""
    return json.dumps(request, sort_keys=True)


def _request_writer(policy: Policy) -> Callable[[dict[str, Any]], str]:
    """Generated values are the policy's values, values derived from them by adding or
    subtracting 1 (finite stays finite), or fixed ones: a policy with finite numbers only
    makes requests msgspec writes exactly."""
    for rule in policy.rules:
        for c in comparisons(rule.when):
            if not _finite(c.value):
                return _python_text
    return _compact_text


def _finite(value: Any) -> bool:
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, list):
        return all(_finite(item) for item in value)
    if isinstance(value, dict):
        return all(_finite(item) for item in value.values())
    return True


class _Collector:
    """The requests so far, without duplicates, up to the cap; and what they were meant to cover."""

    def __init__(
        self,
        max_inputs: int,
        paths: list[str],
        truths: _Truths,
        text: Callable[[dict[str, Any]], str] = _python_text,
    ) -> None:
        self.max_inputs = max_inputs
        self.text = text
        self.holds = truths.holds
        self.requests: dict[str, dict[str, Any]] = {}
        self.capped = False
        self.probed: set[str] = set()
        self.outcomes: dict[str, set[bool]] = {}
        self.missing_kinds = {path: list(_KIND_VALUES) for path in paths}
        self.kinds_left = len(paths) * len(_KIND_VALUES)
        self.descriptions: dict[int, str] = {}

    def add(self, request: dict[str, Any]) -> bool:
        key = self.text(request)
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
        riders: Assignment = {}
        if self.kinds_left:
            touched = read | set(case)
            riders = {
                path: kinds[0][1]
                for path, kinds in self.missing_kinds.items()
                if kinds and not any(_overlap(path, other) for other in touched)
            }
        candidate = _apply(context, {**case, **riders} if riders else case)
        if not self.add(candidate):
            return None
        for path in riders:
            self.missing_kinds[path].pop(0)
            self.kinds_left -= 1
        return candidate

    def observe(self, c: Comparison, request: dict[str, Any]) -> None:
        self.outcomes.setdefault(self.describe(c), set()).add(self.holds(c, request))

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
    truths = _Truths()
    collector = _Collector(max(2, max_inputs), paths, truths, _request_writer(policy))
    search = _Search(deadline, truths)
    base = {"constitutional_hash": constitutional_hash}
    collector.add(base)
    collector.add_probe({"constitutional_hash": WRONG_HASH}, {}, set())  # every path null
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
        read = set(_paths_read(rule))
        wanted = kind != (Effect.DENY, False) and kind not in guard_cases
        if wanted and collector.add_probe(twin, {}, read) is not None:
            guard_cases.add(kind)
    _probe_comparisons(policy, witnesses, base, collector, deadline)
    _probe_kinds(base, collector)
    requests = tuple(GateRequest(request, key) for key, request in collector.requests.items())
    # a rule the search missed may still be applicable in some probe of another rule
    proper = [
        request for request in requests if request["constitutional_hash"] == constitutional_hash
    ]
    unreached = [
        rule.id
        for rule in policy.rules
        if rule.id in unreached and not any(condition_holds(rule.when, r) for r in proper)
    ]
    return GateInputs(
        requests,
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
            need_true = not collector.holds(c, context)
            # false in its rule's witness already (a negated or alternative comparison): the
            # witness is its falsifying case when the field is there; a true one is missing
            falsified = int(need_true and present)
            for _, case in probes(c):
                if falsified >= _FALSE_PROBES and not need_true:
                    break
                candidate = _apply(context, case)
                outcome = collector.holds(c, candidate)
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
        rest = {path: kinds[0][1] for path, kinds in missing.items() if kinds}
        if not collector.add(_apply(base, rest)):
            return
        for path in rest:
            missing[path].pop(0)
            collector.kinds_left -= 1


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
