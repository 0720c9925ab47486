"""Semantic analysis of a parsed policy: what is wrong (errors) or suspicious (warnings), where."""

from __future__ import annotations

from collections.abc import Iterable

from domain.policy.diagnostics import Diagnostic, error, warning
from domain.policy.json_values import canonical_text, is_number
from domain.policy.reference_evaluator import InvalidPattern, compiled_pattern
from domain.policy.rule_model import (
    ORDERING_OPERATORS,
    REQUEST_ROOTS,
    AllOf,
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
        if _contradictory(rule.when):
            findings.append(
                warning(
                    "CONTRADICTORY_CONDITION", "condition can never hold", rule.location, rule.id
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
    subject = f"'{comparison.field} {op.value} {canonical_text(value)}'"
    if op in ORDERING_OPERATORS and not (is_number(value) or isinstance(value, str)):
        return f"{subject} compares against a {_json_type(value)}: it is always false"
    if op in (Operator.IN, Operator.NOT_IN) and not isinstance(value, list):
        return f"{subject} needs a list: it is always false"
    if op in (Operator.STARTS_WITH, Operator.ENDS_WITH) and not isinstance(value, str):
        return f"{subject} needs a string: it is always false"
    if op is Operator.MATCHES and not isinstance(value, str):
        return f"{subject} needs a pattern string: it is always false"
    return None


def _json_type(value: object) -> str:
    if isinstance(value, bool):
        return "boolean"
    if value is None:
        return "null"
    if isinstance(value, list):
        return "list"
    if isinstance(value, dict):
        return "object"
    return "string" if isinstance(value, str) else "number"


def _obligation_findings(rule: Rule) -> Iterable[Diagnostic]:
    for obligation in rule.obligations:
        if obligation.type not in KNOWN_OBLIGATIONS:
            yield warning(
                "UNKNOWN_OBLIGATION",
                f"obligation type '{obligation.type}' is not known; kept as written",
                rule.location,
                rule.id,
            )


def _contradictory(condition: Condition | None) -> bool:
    """Conjunctions that pin one field to two things at once (a sound, incomplete check)."""
    if not isinstance(condition, AllOf):
        return False
    if any(_contradictory(member) for member in condition.members):
        return True
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
    if absent & present:
        return True
    return any(lower[field] > upper[field] for field in lower.keys() & upper.keys())


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
