"""The rule model every legacy format is parsed into (legacy-formats.md, "The rule model")."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, TypeAlias

JsonValue: TypeAlias = Any
REQUEST_ROOTS = frozenset({"user", "action", "resource", "context"})


class Effect(StrEnum):
    ALLOW = "allow"
    DENY = "deny"


class Combining(StrEnum):
    DENY_OVERRIDES = "deny-overrides"
    PERMIT_OVERRIDES = "permit-overrides"
    FIRST_APPLICABLE = "first-applicable"


class Operator(StrEnum):
    EQ = "eq"
    NE = "ne"
    GT = "gt"
    GTE = "gte"
    LT = "lt"
    LTE = "lte"
    IN = "in"
    NOT_IN = "not_in"
    CONTAINS = "contains"
    STARTS_WITH = "starts_with"
    ENDS_WITH = "ends_with"
    MATCHES = "matches"
    EXISTS = "exists"
    NOT_EXISTS = "not_exists"


ORDERING_OPERATORS = frozenset({Operator.GT, Operator.GTE, Operator.LT, Operator.LTE})
VALUELESS_OPERATORS = frozenset({Operator.EXISTS, Operator.NOT_EXISTS})


@dataclass(frozen=True, slots=True)
class Location:
    file: str
    line: int = 0
    column: int = 0

    def __str__(self) -> str:
        if self.line:
            return f"{self.file}:{self.line}:{self.column}"
        return self.file


@dataclass(frozen=True, slots=True)
class Comparison:
    """`field op value` or `field op value_field`; `value_field` set means compare two paths."""

    field: str
    op: Operator
    value: JsonValue = None
    value_field: str | None = None


@dataclass(frozen=True, slots=True)
class AllOf:
    members: tuple[Condition, ...]


@dataclass(frozen=True, slots=True)
class AnyOf:
    members: tuple[Condition, ...]


@dataclass(frozen=True, slots=True)
class Not:
    member: Condition


Condition: TypeAlias = Comparison | AllOf | AnyOf | Not


@dataclass(frozen=True, slots=True)
class Obligation:
    """An obligation object; `attributes` holds it whole, `type` included, as sorted items."""

    attributes: tuple[tuple[str, JsonValue], ...]

    @property
    def type(self) -> str:
        return str(dict(self.attributes).get("type", ""))

    def as_json(self) -> dict[str, JsonValue]:
        return dict(self.attributes)

    @classmethod
    def of(cls, obj: dict[str, JsonValue]) -> Obligation:
        return cls(tuple(sorted(obj.items())))


@dataclass(frozen=True, slots=True)
class Rule:
    id: str
    effect: Effect
    when: Condition | None = None
    priority: int = 0
    reason: str | None = None
    obligations: tuple[Obligation, ...] = ()
    location: Location | None = None

    @property
    def deny_reason(self) -> str:
        return self.reason if self.reason is not None else f"denied by rule {self.id}"


@dataclass(frozen=True, slots=True)
class UnsupportedRule:
    """A rule the converter cannot translate (unknown operator, inline script, IAM qualifier)."""

    id: str
    why: str
    location: Location | None = None


@dataclass(frozen=True, slots=True)
class Policy:
    policy_id: str
    rules: tuple[Rule, ...]
    combining: Combining = Combining.DENY_OVERRIDES
    default: Effect = Effect.DENY
    name: str | None = None
    description: str | None = None
    version: str | None = None
    unsupported: tuple[UnsupportedRule, ...] = ()
    source_format: str = "json"
    location: Location | None = None
    notes: tuple[str, ...] = field(default=())

    @property
    def total_rules(self) -> int:
        return len(self.rules) + len(self.unsupported)

    def ordered_rules(self) -> tuple[Rule, ...]:
        """Rules in first-applicable order: priority descending, ties in document order."""
        return tuple(sorted(self.rules, key=lambda rule: -rule.priority))


def comparisons(condition: Condition | None) -> list[Comparison]:
    """Every comparison of a condition, depth first, in document order."""
    if condition is None:
        return []
    if isinstance(condition, Comparison):
        return [condition]
    if isinstance(condition, Not):
        return comparisons(condition.member)
    found: list[Comparison] = []
    for member in condition.members:
        found.extend(comparisons(member))
    return found
