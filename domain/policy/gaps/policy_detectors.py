"""Gap detectors on the rule model (legacy sources). Each returns one message per finding."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from domain.policy.analysis import analyse
from domain.policy.json_values import canonical_text
from domain.policy.rule_model import Comparison, Effect, Operator, Policy, Rule, comparisons

SENSITIVE_WORDS = (
    "pii", "personal", "secret", "financial", "finance", "medical", "health", "classified",
    "confidential", "payroll", "salary", "ssn", "credit",
)  # fmt: skip
PROPOSING = ("propose", "submit", "create", "request", "draft")
APPROVING = ("approve", "authorize", "authorise", "sign-off", "signoff", "ratify")
TIME_WORDS = ("time", "date", "expir", "valid", "until", "ttl")
ROLE_FIELDS = ("user.role", "user.roles", "user.maci_role", "user.group", "user.groups")


def _allow_rules(policy: Policy) -> list[Rule]:
    return [rule for rule in policy.rules if rule.effect is Effect.ALLOW]


def _strings(value: Any) -> Iterable[str]:
    if isinstance(value, str):
        yield value.lower()
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)


def _mentions(rule: Rule, words: Iterable[str]) -> bool:
    words = tuple(words)
    for comparison in comparisons(rule.when):
        texts = [comparison.field.lower(), *_strings(comparison.value)]
        if any(word in text for text in texts for word in words):
            return True
    return False


def is_wildcard(comparison: Comparison) -> bool:
    if comparison.op is Operator.EXISTS:
        return True
    if comparison.op is Operator.MATCHES and isinstance(comparison.value, str):
        core = comparison.value.removeprefix("(?s)").removeprefix("^").removesuffix("$")
        return core in (".*", "")
    return False


def default_allow(policy: Policy) -> list[str]:
    if policy.default is Effect.ALLOW:
        return ["the default decision is allow"]
    return []


def wildcard_allow(policy: Policy) -> list[str]:
    found = []
    for rule in _allow_rules(policy):
        tests = comparisons(rule.when)
        if rule.when is None or all(is_wildcard(test) for test in tests):
            found.append(f"allow rule {rule.id} applies to every request")
    return found


def unconditional_sensitive_allow(policy: Policy) -> list[str]:
    found = []
    for rule in _allow_rules(policy):
        if not _mentions(rule, SENSITIVE_WORDS):
            continue
        fields = [test.field for test in comparisons(rule.when)]
        fields += [test.value_field for test in comparisons(rule.when) if test.value_field]
        if not any(field.startswith(("user.", "context.")) for field in fields):
            found.append(f"allow rule {rule.id} grants a sensitive resource to anyone")
    return found


def missing_constitutional_guard(policy: Policy) -> list[str]:
    return [f"legacy policy {policy.policy_id} decides without the constitutional hash"]


def missing_audit_obligation(policy: Policy) -> list[str]:
    allows = _allow_rules(policy)
    audited = any(o.type == "audit" for rule in allows for o in rule.obligations)
    if allows and not audited:
        return [f"{len(allows)} allow rule(s), none with an audit obligation"]
    return []


def _granted(rule: Rule, field: str) -> set[str]:
    values: set[str] = set()
    for test in comparisons(rule.when):
        if test.field == field and test.op in (Operator.EQ, Operator.IN):
            values.update(_strings(test.value))
    return values


def separation_of_powers(policy: Policy) -> list[str]:
    powers: dict[str, set[str]] = {}
    for rule in _allow_rules(policy):
        roles = set().union(*(_granted(rule, field) for field in ROLE_FIELDS)) or {"any principal"}
        actions = _granted(rule, "action")
        for role in roles:
            powers.setdefault(role, set()).update(actions)
    found = []
    for role, actions in sorted(powers.items()):
        proposes = sorted(a for a in actions if any(word in a for word in PROPOSING))
        approves = sorted(a for a in actions if any(word in a for word in APPROVING))
        if proposes and approves:
            found.append(f"{role} may both {proposes[0]} and {approves[0]}")
    return found


def unreachable_rules(policy: Policy) -> list[str]:
    return [
        f"rule {item.rule_id}: {item.message}"
        for item in analyse(policy)
        if item.code in ("UNREACHABLE_RULE", "SHADOWED_RULE")
    ]


def contradictory_rules(policy: Policy) -> list[str]:
    found = [
        f"rule {item.rule_id}: {item.message}"
        for item in analyse(policy)
        if item.code == "CONTRADICTORY_CONDITION"
    ]
    by_condition: dict[str, Rule] = {}
    for rule in policy.rules:
        key = canonical_text(repr(rule.when))
        other = by_condition.setdefault(key, rule)
        if other.effect is not rule.effect:
            found.append(
                f"rules {other.id} and {rule.id} have the same condition, opposite effects"
            )
    return found


def unbounded_validity(policy: Policy) -> list[str]:
    allows = _allow_rules(policy)
    fields = [test.field for rule in policy.rules for test in comparisons(rule.when)]
    fields += [test.value_field or "" for rule in policy.rules for test in comparisons(rule.when)]
    bounded = any(word in field.lower() for field in fields for word in TIME_WORDS)
    if allows and not bounded:
        return [f"{len(allows)} allow rule(s) without a time bound"]
    return []


def pii_without_purpose(policy: Policy) -> list[str]:
    found = []
    for rule in _allow_rules(policy):
        if not _mentions(rule, ("pii", "personal")):
            continue
        if not any(test.field == "context.purpose" for test in comparisons(rule.when)):
            found.append(f"allow rule {rule.id} grants PII without a declared purpose")
    return found
