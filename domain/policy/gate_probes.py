"""The values the gate tries for one comparison: those that make it true and those that make
it false, the most telling first (the boundary, the near miss, the value of another type that a
loose comparison would confuse with it). Patterns get strings built from them and confirmed by RE2.
"""

from __future__ import annotations

from typing import Any

from domain.policy.json_values import is_number
from domain.policy.pattern_witnesses import matching_strings, non_matching_strings
from domain.policy.reference_evaluator import ABSENT
from domain.policy.rule_model import Comparison, Operator

Assignment = dict[str, Any]
"""Paths to values; ABSENT removes a path."""


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


def probes(c: Comparison) -> list[tuple[str, Assignment]]:
    """(label, assignment) pairs; an assignment maps paths to values (ABSENT removes a path)."""
    if c.value_field is None:
        return [(label, {c.field: item}) for label, item in _value_probes(c)]
    found: list[tuple[str, Assignment]] = []
    for index, (left, right) in enumerate(_DYNAMIC_TRUE.get(c.op, [])):
        found.append((f"pair-{index}", {c.field: left, c.value_field: right}))
    found.append(("other-type", {c.field: 7, c.value_field: "7"}))
    found.append(("other-absent", {c.value_field: ABSENT}))
    return found


def fitted(c: Comparison, want: bool, current: Any) -> list[Assignment]:
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
