"""The Rego v1 module of a policy (legacy-formats.md, "Output: Rego v1"), formatted like `opa fmt`.

The decision is an else-chain over the rules in deciding order; each rule's condition is written
into the places that read it (its links of the chain, its `deny` reason, its obligations) as the
literals of a body, one body per alternative of a top-level `any`. A nested `any`, or a `not` of
more than one literal, is a helper rule `rule_<n>_<m>` that is true or undefined, so `not` in Rego
means exactly the rule model's `not`; a rule without condition is `rule_<n> := true`.

Conditions are written inline rather than as one rule per policy rule because the engine's cost
of a request is mostly its number of rule evaluations: a literal costs a fraction of a rule
reference, so repeating a rule's few literals in two or three places is cheaper than naming it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from domain.constitution import DEFAULT_CONSTITUTIONAL_HASH
from domain.policy.json_values import is_number
from domain.policy.reference_evaluator import CONSTITUTIONAL_HASH_MISMATCH
from domain.policy.rule_model import (
    AllOf,
    AnyOf,
    Comparison,
    Condition,
    Effect,
    Operator,
    Policy,
)
from domain.policy.rule_order import deciding_order

REGO_KEYWORDS = frozenset(
    {"as", "contains", "default", "else", "every", "false", "if", "import", "in", "not"}
    | {"null", "package", "some", "true", "with"}
)
_ORDER_SYMBOLS = {Operator.GT: ">", Operator.GTE: ">=", Operator.LT: "<", Operator.LTE: "<="}
_COMPARABLE = """comparable_values(a, b) if {
\tis_number(a)
\tis_number(b)
}

comparable_values(a, b) if {
\tis_string(a)
\tis_string(b)
}"""
_CONTAINS = """contains_value(collection, value) if {
\tis_array(collection)
\tvalue in collection
}

contains_value(text, value) if {
\tis_string(text)
\tis_string(value)
\tcontains(text, value)
}"""


def package_segment(name: str) -> str:
    segment = "".join(
        c if c in "abcdefghijklmnopqrstuvwxyz0123456789_" else "_" for c in name.lower()
    )
    return f"p_{segment}" if segment[:1].isdigit() else segment


def package_name(policy_id: str, tenant: str | None = None) -> str:
    if tenant:
        return f"acgs.tenants.{package_segment(tenant)}.{package_segment(policy_id)}"
    return f"acgs.policies.{package_segment(policy_id)}"


def rego_value(value: Any) -> str:
    """A JSON value as a Rego term (Rego's scalar and composite syntax is JSON's)."""
    if isinstance(value, dict):
        items = ", ".join(f"{rego_value(k)}: {rego_value(v)}" for k, v in sorted(value.items()))
        return "{" + items + "}"
    if isinstance(value, list):
        return "[" + ", ".join(rego_value(item) for item in value) + "]"
    return json.dumps(value, ensure_ascii=False)


def rego_ref(path: str) -> str:
    parts = ["input"]
    for segment in path.split("."):
        is_name = segment.replace("_", "a").isalnum() and not segment[0].isdigit()
        if is_name and segment.isascii() and segment not in REGO_KEYWORDS:
            parts.append(f".{segment}")
        else:
            parts.append(f"[{json.dumps(segment)}]")
    return "".join(parts)


@dataclass
class _ModuleWriter:
    helpers: list[str] = field(default_factory=list)
    uses_comparable: bool = False
    uses_contains: bool = False
    helper_count: dict[str, int] = field(default_factory=dict)

    def helper_name(self, owner: str) -> str:
        number = self.helper_count.get(owner, 0) + 1
        self.helper_count[owner] = number
        return f"{owner}_{number}"

    def define(self, name: str, bodies: list[list[str]]) -> None:
        self.helpers.extend(_rule_text(name, body) for body in bodies)

    def literals(self, condition: Condition, owner: str) -> list[str]:  # noqa: PLR0911
        """The body literals (a conjunction) that hold exactly when the condition does."""
        if isinstance(condition, Comparison):
            return self.comparison(condition)
        if isinstance(condition, AllOf):
            found = [lit for member in condition.members for lit in self.literals(member, owner)]
            return found or ["true"]
        if isinstance(condition, AnyOf):
            if not condition.members:
                return ["false"]
            if len(condition.members) == 1:
                return self.literals(condition.members[0], owner)
            name = self.helper_name(owner)
            self.define(name, [self.literals(member, owner) for member in condition.members])
            return [name]
        inner = self.literals(condition.member, owner)
        if len(inner) == 1 and not inner[0].startswith("not "):
            return [f"not {inner[0]}"]
        name = self.helper_name(owner)
        self.define(name, [inner])
        return [f"not {name}"]

    def comparison(self, comparison: Comparison) -> list[str]:  # noqa: C901, PLR0911, PLR0912
        op, subject = comparison.op, rego_ref(comparison.field)
        if op is Operator.EXISTS:
            return [f"_ = {subject}"]
        if op is Operator.NOT_EXISTS:
            return [f"not _ = {subject}"]
        dynamic = comparison.value_field is not None
        value = comparison.value
        other = rego_ref(comparison.value_field) if comparison.value_field else rego_value(value)
        if op is Operator.EQ:
            return [f"{subject} == {other}"]
        if op is Operator.NE:
            return [f"{subject} != {other}"]
        if op in _ORDER_SYMBOLS:
            symbol = _ORDER_SYMBOLS[op]
            if dynamic:
                self.uses_comparable = True
                return [f"comparable_values({subject}, {other})", f"{subject} {symbol} {other}"]
            if is_number(value):
                return [f"is_number({subject})", f"{subject} {symbol} {other}"]
            if isinstance(value, str):
                return [f"is_string({subject})", f"{subject} {symbol} {other}"]
            return ["false"]
        if op in (Operator.IN, Operator.NOT_IN):
            if not dynamic and not isinstance(value, list):
                return ["false"]
            guard = [f"is_array({other})"] if dynamic else []
            if op is Operator.IN:
                return [*guard, f"{subject} in {other}"]
            return [*guard, f"_ = {subject}", f"not {subject} in {other}"]
        if op is Operator.CONTAINS:
            self.uses_contains = True
            return [f"contains_value({subject}, {other})"]
        if not dynamic and not isinstance(value, str):
            return ["false"]
        guard = [f"is_string({subject})"] + ([f"is_string({other})"] if dynamic else [])
        if op is Operator.STARTS_WITH:
            return [*guard, f"startswith({subject}, {other})"]
        if op is Operator.ENDS_WITH:
            return [*guard, f"endswith({subject}, {other})"]
        if op is Operator.MATCHES:
            return [*guard, f"regex.match({other}, {subject})"]
        raise ValueError(f"operator {op} cannot be generated")


def _rule_text(head: str, body: list[str]) -> str:
    if len(body) == 1:
        return f"{head} if {body[0]}"
    return head + " if {\n" + "".join(f"\t{literal}\n" for literal in body) + "}"


def _comment(text: str) -> str:
    return "\n".join(f"# {line}".rstrip() for line in text.splitlines() or [""])


def _alternatives(
    writer: _ModuleWriter, condition: Condition | None, owner: str
) -> list[list[str]]:
    """The bodies that together hold exactly when `condition` does: one per member of a top-level
    `any` (identical ones once), else one."""
    if condition is None:
        return [[owner]]
    if isinstance(condition, AnyOf) and len(condition.members) > 1:
        bodies = [writer.literals(member, owner) for member in condition.members]
    else:
        bodies = [writer.literals(condition, owner)]
    return list({tuple(body): body for body in bodies}.values())


def generate_rego(
    policy: Policy,
    *,
    tenant: str | None = None,
    constitutional_hash: str = DEFAULT_CONSTITUTIONAL_HASH,
    source: str | None = None,
) -> str:
    """The whole module; deterministic: the same policy gives the same bytes."""
    writer = _ModuleWriter()
    names = {rule.id: f"rule_{index}" for index, rule in enumerate(policy.rules, start=1)}
    origin = f" from {source}" if source else ""
    sections: list[str] = [
        _comment(
            f"Policy {policy.policy_id}{f' ({policy.name})' if policy.name else ''}: generated by "
            f"acgs policy convert{origin}.\nCombining {policy.combining.value}, "
            f"default {policy.default.value}. Do not edit; convert the source again."
        )
        + f"\npackage {package_name(policy.policy_id, tenant)}",
        f"constitutional_hash := {json.dumps(constitutional_hash)}",
        "constitutional_hash_matches if input.constitutional_hash == constitutional_hash",
    ]
    for unsupported in policy.unsupported:
        where = f" ({unsupported.location})" if unsupported.location else ""
        sections.append(
            _comment(
                f"MANUAL REVIEW: rule {unsupported.id}{where} was not converted: {unsupported.why}"
            )
        )
    bodies: dict[str, list[list[str]]] = {}
    headers: dict[str, str] = {}
    for rule in policy.rules:
        name = names[rule.id]
        where = f" ({rule.location})" if rule.location else ""
        headers[rule.id] = _comment(f"rule {rule.id}{where}: {rule.effect.value}")
        bodies[rule.id] = _alternatives(writer, rule.when, name)
        if rule.when is None:
            sections.append(f"{headers[rule.id]}\n{name} := true")
        elif writer.helpers:
            sections.append(headers[rule.id] + "\n" + "\n\n".join(writer.helpers))
        writer.helpers.clear()
    if writer.uses_comparable:
        sections.append(_COMPARABLE)
    if writer.uses_contains:
        sections.append(_CONTAINS)
    sections.append(_decision_chain(policy, bodies, headers))
    sections.append(
        'final_decision := decision if {\n\tconstitutional_hash_matches\n} else := "deny"'
    )
    sections.append('default allow := false\n\nallow if final_decision == "allow"')
    sections.append(
        f"deny contains {json.dumps(CONSTITUTIONAL_HASH_MISMATCH)} "
        "if not constitutional_hash_matches"
    )
    for rule in policy.rules:
        if rule.effect is Effect.DENY:
            reason = json.dumps(rule.deny_reason, ensure_ascii=False)
            sections.extend(_rule_text(f"deny contains {reason}", body) for body in bodies[rule.id])
    if not any(rule.obligations for rule in policy.rules):
        sections.append("obligations := set()")
    for rule in policy.rules:
        for obligation in rule.obligations:
            head = f"obligations contains {rego_value(obligation.as_json())}"
            decided = f'final_decision == "{rule.effect.value}"'
            sections.extend(_rule_text(head, [decided, *body]) for body in bodies[rule.id])
    return "\n\n".join(sections) + "\n"


def _decision_chain(
    policy: Policy, bodies: dict[str, list[list[str]]], headers: dict[str, str]
) -> str:
    """`decision`: the effect of the first applicable rule in deciding order, else the default;
    a link per body of each rule, the rule named by a comment in its first."""
    default = json.dumps(policy.default.value)
    lines: list[str] = []
    for rule in deciding_order(policy):
        for number, body in enumerate(bodies[rule.id]):
            head = "decision :=" if not lines else "} else :="
            lines.append(f'{head} "{rule.effect.value}" if {{')
            if number == 0:
                lines.extend(f"\t{line}" for line in headers[rule.id].splitlines())
            lines.extend(f"\t{literal}" for literal in body)
    if not lines:
        return f"decision := {default}"
    lines.append(f"}} else := {default}")
    return "\n".join(lines)
