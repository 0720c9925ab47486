"""Semantic analysis of a parsed policy: what is wrong (errors) or suspicious (warnings), where."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from domain.policy.diagnostics import Diagnostic, error, warning
from domain.policy.json_values import canonical_text, is_number, json_equal
from domain.policy.reference_evaluator import InvalidPattern, compiled_pattern
from domain.policy.rule_model import (
    ORDERING_OPERATORS,
    REQUEST_ROOTS,
    AllOf,
    AnyOf,
    Combining,
    Comparison,
    Condition,
    Effect,
    Not,
    Operator,
    Policy,
    Rule,
    comparisons,
)

KNOWN_OBLIGATIONS = frozenset(
    {"audit", "notify", "log", "redact", "encrypt", "mask", "require_mfa", "require_approval"}
    | {"retain", "alert", "watermark"}
)
_UNICODE_CLASSES = ("\\d", "\\w", "\\s", "\\b", "\\D", "\\W", "\\S", "\\B")


def analyse(policy: Policy) -> list[Diagnostic]:
    """Every finding about the policy, in rule order; errors make the policy fail."""
    findings: list[Diagnostic] = []
    for unsupported in policy.unsupported:
        findings.append(
            warning(
                "MANUAL_REVIEW",
                f"not converted: {unsupported.why}",
                unsupported.location,
                unsupported.id,
            )
        )
    for rule in policy.rules:
        findings.extend(_comparison_findings(rule))
        findings.extend(_obligation_findings(rule))
        if never_applicable(rule):
            findings.append(
                warning(
                    "CONTRADICTORY_CONDITION",
                    "condition can never hold (contradictory or always-false comparisons)",
                    rule.location,
                    rule.id,
                )
            )
    findings.extend(_reachability_findings(policy))
    if policy.default is Effect.ALLOW:
        findings.append(warning("DEFAULT_ALLOW", "the default decision is allow", policy.location))
    if not policy.rules and not policy.unsupported:
        findings.append(warning("NO_RULES", "the policy has no rules", policy.location))
    return findings


def _comparison_findings(rule: Rule) -> Iterable[Diagnostic]:
    for comparison in comparisons(rule.when):
        for path in filter(None, (comparison.field, comparison.value_field)):
            if path.split(".")[0] not in REQUEST_ROOTS:
                yield warning(
                    "UNKNOWN_PATH",
                    f"'{path}' does not start with user, action, resource or context",
                    rule.location,
                    rule.id,
                )
        if comparison.value_field is not None:
            continue
        mismatch = _type_mismatch(comparison)
        if mismatch:
            yield warning("TYPE_MISMATCH", mismatch, rule.location, rule.id)
        if comparison.op is Operator.MATCHES and isinstance(comparison.value, str):
            yield from _pattern_findings(comparison.value, rule)


def _pattern_findings(pattern: str, rule: Rule) -> Iterable[Diagnostic]:
    try:
        compiled_pattern(pattern)
    except InvalidPattern as bad:
        yield error("INVALID_REGEX", f"RE2 cannot compile {bad}", rule.location, rule.id)
        return
    if any(cls in pattern for cls in _UNICODE_CLASSES):
        yield warning(
            "REGEX_CHARACTER_CLASS",
            f"{pattern!r}: \\d \\w \\s \\b are ASCII in RE2 but Unicode in the Rego engine; "
            "prefer explicit classes such as [0-9]",
            rule.location,
            rule.id,
        )


def _type_mismatch(comparison: Comparison) -> str | None:
    op, value = comparison.op, comparison.value
    if op in ORDERING_OPERATORS and not (is_number(value) or isinstance(value, str)):
        why = f"compares against a {_json_type(value)}: it is always false"
    elif op in (Operator.IN, Operator.NOT_IN) and not isinstance(value, list):
        why = "needs a list: it is always false"
    elif op in (Operator.STARTS_WITH, Operator.ENDS_WITH) and not isinstance(value, str):
        why = "needs a string: it is always false"
    elif op is Operator.MATCHES and not isinstance(value, str):
        why = "needs a pattern string: it is always false"
    else:
        return None
    return f"'{comparison.field} {op.value} {canonical_text(value)}' {why}"


def _json_type(value: object) -> str:
    """The JSON type of a value that is neither a number nor a string."""
    if isinstance(value, bool):
        return "boolean"
    if value is None:
        return "null"
    return "list" if isinstance(value, list) else "object"


def _obligation_findings(rule: Rule) -> Iterable[Diagnostic]:
    for obligation in rule.obligations:
        if obligation.type not in KNOWN_OBLIGATIONS:
            yield warning(
                "UNKNOWN_OBLIGATION",
                f"obligation type '{obligation.type}' is not known; kept as written",
                rule.location,
                rule.id,
            )


def never_applicable(rule: Rule) -> bool:
    """True when the rule's condition is proven unsatisfiable: the gate need not reach it."""
    return rule.when is not None and not can_hold(rule.when)


def can_hold(condition: Condition) -> bool:
    """False only when no request makes the condition true (sound, incomplete)."""
    if isinstance(condition, Comparison):
        if condition.value_field is not None:
            return True
        empty_list = condition.op is Operator.IN and condition.value == []
        return not empty_list and _type_mismatch(condition) is None
    if isinstance(condition, Not):
        return _can_fail(condition.member)
    if isinstance(condition, AnyOf):
        return any(can_hold(member) for member in condition.members)
    return all(can_hold(member) for member in condition.members) and not _contradictory(condition)


def _can_fail(condition: Condition) -> bool:
    """False only when every request makes the condition true."""
    if isinstance(condition, Comparison):
        return True  # an absent field (or, for not_exists, a present one) makes it false
    if isinstance(condition, Not):
        return can_hold(condition.member)
    if isinstance(condition, AllOf):
        return any(_can_fail(member) for member in condition.members)
    return all(_can_fail(member) for member in condition.members)


def _contradictory(condition: Condition | None) -> bool:
    """Conjunctions that pin one field to two things at once (a sound, incomplete check)."""
    if not isinstance(condition, AllOf):
        return False
    # (A conjunction among the members is checked by `can_hold`, which asks here only of one
    # whose members can each hold.)
    equal: dict[str, str] = {}
    absent: set[str] = set()
    present: set[str] = set()
    lower: dict[str, float] = {}
    upper: dict[str, float] = {}
    for member in condition.members:
        if isinstance(member, Not) or not isinstance(member, Comparison):
            continue
        if member.value_field is not None:
            continue
        field, op, value = member.field, member.op, member.value
        if op is Operator.NOT_EXISTS:
            absent.add(field)
            continue
        present.add(field)
        if op is Operator.EQ:
            text = canonical_text(value)
            if equal.setdefault(field, text) != text:
                return True
        if op in (Operator.GT, Operator.GTE) and is_number(value):
            lower[field] = max(
                lower.get(field, float("-inf")), value + (1e-12 if op is Operator.GT else 0)
            )
        if op in (Operator.LT, Operator.LTE) and is_number(value):
            upper[field] = min(
                upper.get(field, float("inf")), value - (1e-12 if op is Operator.LT else 0)
            )
    empty_range = any(lower[field] > upper[field] for field in lower.keys() & upper.keys())
    return bool(absent & present) or empty_range or _conflicting_members(condition.members)


def _conflicting_members(members: tuple[Condition, ...]) -> bool:
    return _negated_member(members) or _string_conflict(members)


def _negated_member(members: tuple[Condition, ...]) -> bool:
    """`a` and `not b` side by side where `a` implies `b` (`c` and `not c` the simplest)."""
    negated: list[Comparison] = []
    for member in members:
        if isinstance(member, Not):
            inner = member.member
            # not (a or b ...) is false as soon as one alternative holds
            options = inner.members if isinstance(inner, AnyOf) else (inner,)
            negated.extend(option for option in options if isinstance(option, Comparison))
    positive = [m for m in members if isinstance(m, Comparison)]
    return any(_implies(a, b) for a in positive for b in negated)


def _implies(a: Comparison, b: Comparison) -> bool:  # noqa: PLR0911 - one case per operator
    """Every request where `a` holds makes `b` hold (False when unsure)."""
    if a == b:
        return True
    if a.field != b.field or a.value_field is not None or b.value_field is not None:
        return False
    if a.op is Operator.EQ:
        return _admits(b, a.value) and b.op in (Operator.IN, Operator.NOT_IN, Operator.STARTS_WITH)
    if a.op is Operator.IN and b.op is Operator.IN and isinstance(a.value, list):
        return all(_admits(b, item) for item in a.value)
    if a.op is Operator.NOT_IN and b.op is Operator.NOT_IN and isinstance(b.value, list):
        return isinstance(a.value, list) and all(_member(item, a.value) for item in b.value)
    if a.op is Operator.STARTS_WITH and b.op is Operator.STARTS_WITH:
        return isinstance(a.value, str) and isinstance(b.value, str) and a.value.startswith(b.value)
    if not (is_number(a.value) and is_number(b.value)):
        return False
    below = {Operator.LT: (Operator.LT, Operator.LTE), Operator.LTE: (Operator.LTE, Operator.LT)}
    above = {Operator.GT: (Operator.GT, Operator.GTE), Operator.GTE: (Operator.GTE, Operator.GT)}
    if a.op in below and b.op in below[a.op]:
        strict = a.op is Operator.LTE and b.op is Operator.LT
        return bool(a.value < b.value if strict else a.value <= b.value)
    if a.op in above and b.op in above[a.op]:
        strict = a.op is Operator.GTE and b.op is Operator.GT
        return bool(a.value > b.value if strict else a.value >= b.value)
    return False


def _string_conflict(members: tuple[Condition, ...]) -> bool:
    """Prefixes (or suffixes) of one field that no string has both of, an `eq` value that lacks
    one, or an `eq` value outside an `in` list (inside a `not_in` list)."""
    by_field: dict[str, list[Comparison]] = {}
    for member in members:
        if isinstance(member, Comparison) and member.value_field is None:
            by_field.setdefault(member.field, []).append(member)
    for found in by_field.values():
        prefixes = [c.value for c in found if c.op is Operator.STARTS_WITH]
        suffixes = [c.value for c in found if c.op is Operator.ENDS_WITH]
        if not (_nested(prefixes, str.startswith) and _nested(suffixes, str.endswith)):
            return True
        for pinned in (c.value for c in found if c.op is Operator.EQ):
            if any(not _admits(c, pinned) for c in found):
                return True
        lists = [c.value for c in found if c.op is Operator.IN and isinstance(c.value, list)]
        if lists and not any(all(_member(item, other) for other in lists) for item in lists[0]):
            return True
    return False


def _member(item: object, values: list[object]) -> bool:
    return any(json_equal(item, value) for value in values)


def _nested(values: list[object], extends: Callable[[str, str], bool]) -> bool:
    texts = [value for value in values if isinstance(value, str)]
    return all(extends(a, b) or extends(b, a) for a in texts for b in texts)


def _admits(comparison: Comparison, pinned: object) -> bool:
    """Whether the field equal to `pinned` can satisfy the comparison (True when unsure)."""
    op, value = comparison.op, comparison.value
    if op in (Operator.STARTS_WITH, Operator.ENDS_WITH) and isinstance(value, str):
        if not isinstance(pinned, str):
            return False
        return pinned.startswith(value) if op is Operator.STARTS_WITH else pinned.endswith(value)
    if op in (Operator.IN, Operator.NOT_IN) and isinstance(value, list):
        member = _member(pinned, value)
        return member if op is Operator.IN else not member
    return True


def _reachability_findings(policy: Policy) -> Iterable[Diagnostic]:
    unconditional = [rule for rule in policy.rules if rule.when is None]
    if policy.combining is Combining.FIRST_APPLICABLE:
        seen: dict[str, Rule] = {}
        blocker: Rule | None = None
        for rule in policy.ordered_rules():
            if blocker is not None:
                yield warning(
                    "UNREACHABLE_RULE",
                    f"never decides: rule {blocker.id} before it always applies",
                    rule.location,
                    rule.id,
                )
                continue
            key = canonical_text(repr(rule.when))
            if key in seen:
                yield warning(
                    "SHADOWED_RULE",
                    f"never decides: rule {seen[key].id} has the same condition and comes first",
                    rule.location,
                    rule.id,
                )
            seen.setdefault(key, rule)
            if rule.when is None:
                blocker = rule
    else:
        winner = Effect.DENY if policy.combining is Combining.DENY_OVERRIDES else Effect.ALLOW
        blockers = [rule for rule in unconditional if rule.effect is winner]
        if blockers:
            for rule in policy.rules:
                if rule.effect is not winner:
                    yield warning(
                        "UNREACHABLE_RULE",
                        f"never decides: {winner.value} rule {blockers[0].id} always applies "
                        f"and {policy.combining.value} lets it win",
                        rule.location,
                        rule.id,
                    )
    if unconditional:
        yield warning(
            "DEFAULT_UNREACHABLE",
            f"the default ({policy.default.value}) is never used: rule {unconditional[0].id} "
            "always applies",
            policy.location,
        )
