"""Bounds on untrusted policy sources (legacy-formats.md, "Limits"): one settings object.

Every source a tenant hands in (a file given to `acgs policy convert`, an upload to the policy
registry) is checked against these before it may cost more than its size: a source over a bound
is refused as a whole policy (`failed`) with a message in the toolkit's words and the place.
Size and batch bounds raise `PolicyTooLarge` (HTTP 413), the others `PolicyLimitExceeded` (422).
The two `evaluation_` bounds are enforced by the Rego engine adapter (a module over them fails
with REGO_EVALUATION_ERROR); `gate_inputs` and `conversion_milliseconds` bound the work of the
conversion itself (through `ConversionSettings`).
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace

from domain.policy.errors import PolicyLimitExceeded, PolicyTooLarge
from domain.policy.rule_model import (
    AllOf,
    AnyOf,
    Comparison,
    Condition,
    Location,
    Not,
    Operator,
    Policy,
)

KIB = 1024
MIB = 1024 * KIB


@dataclass(frozen=True, slots=True)
class PolicyLimits:
    """The bounds; every field is a maximum, and every one can be raised (or lowered) per run."""

    source_bytes: int = 4 * MIB  # one source file or upload, in bytes of UTF-8
    batch_files: int = 100_000  # source files in one batch (one convert run, one archive)
    source_policies: int = 10_000  # policies in one source (DSL blocks, YAML documents, bundle)
    document_depth: int = 256  # nested arrays/objects (JSON) or collections (YAML)
    document_nodes: int = 1_000_000  # values in one JSON/YAML document, YAML aliases expanded
    condition_depth: int = 64  # nested all/any/not (JSON, YAML), parentheses and NOT (DSL)
    rules: int = 10_000  # rules of one policy (statements of an IAM policy)
    list_values: int = 10_000  # values of one `in`/`not_in` list, or any list in a document
    string_length: int = 65_536  # characters of any one string
    pattern_length: int = 4_096  # characters of a `matches` pattern or an IAM wildcard
    evaluation_seconds: int = 10  # Rego evaluation of one module on all its gate requests
    evaluation_memory_bytes: int = 1024 * MIB  # what the Rego engine may allocate for one module
    gate_inputs: int = 2_000  # generated gate requests for one policy
    conversion_milliseconds: int = 30_000  # analysis, Rego, inputs and gate of one policy

    @property
    def list_items(self) -> int:
        """No list in a document may be longer than a policy's rules or an `in` list may be."""
        return max(self.rules, self.list_values)

    def with_overrides(self, overrides: dict[str, int]) -> PolicyLimits:
        """A copy with some bounds changed; names as the fields (`source_bytes=8388608`)."""
        known = {item.name for item in fields(self)}
        for name, value in overrides.items():
            if name not in known:
                raise ValueError(f"unknown limit '{name}' (known: {', '.join(sorted(known))})")
            if value < 1:
                raise ValueError(f"limit '{name}' must be a positive integer")
        return replace(self, **overrides)


DEFAULT_LIMITS = PolicyLimits()


def at(location: Location) -> str:
    """` at line 3, column 9` for a location that has one, else nothing."""
    return f" at line {location.line}, column {location.column}" if location.line else ""


def source_too_large(file: str, size: int, limits: PolicyLimits) -> PolicyTooLarge:
    return PolicyTooLarge(
        f"source is larger than the {limits.source_bytes:,} bytes allowed ({size:,} bytes)",
        Location(file),
        limit="source_bytes",
    )


def too_many_files(count: int, limits: PolicyLimits) -> PolicyTooLarge:
    return PolicyTooLarge(
        f"{count:,} source files in one batch, more than the {limits.batch_files:,} allowed",
        Location("batch"),
        limit="batch_files",
    )


def too_many_policies(file: str, limits: PolicyLimits, location: Location) -> PolicyLimitExceeded:
    return exceeded(
        "source_policies",
        f"more than {limits.source_policies:,} policies in one source",
        location if location.line else Location(file, 1, 1),
    )


def exceeded(limit: str, what: str, location: Location) -> PolicyLimitExceeded:
    return PolicyLimitExceeded(f"{what}{at(location)}", location, limit=limit)


def check_policy(policy: Policy, limits: PolicyLimits) -> None:
    """The rule-model bounds, whatever the source format: rules, condition depth, `in` lists
    and patterns; raises PolicyLimitExceeded at the offending rule. (Strings are bounded where
    the source is read, before a model exists.)"""
    count = policy.total_rules
    if count > limits.rules:
        raise exceeded(
            "rules",
            f"policy {policy.policy_id} has {count:,} rules, "
            f"more than the {limits.rules:,} allowed",
            policy.location or Location(""),
        )
    for rule in policy.rules:
        if rule.when is not None:
            where = rule.location or policy.location or Location("")
            problem = _condition_problem(rule.when, limits)
            if problem is not None:
                limit, what = problem
                raise exceeded(limit, f"rule {rule.id}: {what}", where)


def _condition_problem(condition: Condition, limits: PolicyLimits) -> tuple[str, str] | None:
    """The first bound a condition tree breaks, walked without recursion."""
    stack: list[tuple[Condition, int]] = [(condition, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > limits.condition_depth:
            return (
                "condition_depth",
                f"conditions nested deeper than {limits.condition_depth} levels",
            )
        if isinstance(node, Not):
            stack.append((node.member, depth + 1))
        elif isinstance(node, AllOf | AnyOf):
            stack.extend((member, depth + 1) for member in node.members)
        elif isinstance(node, Comparison):
            problem = _comparison_problem(node, limits)
            if problem is not None:
                return problem
    return None


def _comparison_problem(comparison: Comparison, limits: PolicyLimits) -> tuple[str, str] | None:
    value = comparison.value
    if isinstance(value, list) and len(value) > limits.list_values:
        return (
            "list_values",
            f"'{comparison.op.value}' list of {len(value):,} values, "
            f"more than the {limits.list_values:,} allowed",
        )
    is_pattern = comparison.op is Operator.MATCHES and isinstance(value, str)
    if is_pattern and len(str(value)) > limits.pattern_length:
        return (
            "pattern_length",
            f"pattern of {len(str(value)):,} characters, "
            f"more than the {limits.pattern_length:,} allowed",
        )
    return None
