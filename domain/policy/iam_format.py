"""AWS-IAM-style JSON documents (legacy-formats.md, format 1) translated into the rule model.

IAM meaning is deny-overrides with default deny. Action/Resource patterns with `*` and `?` become
anchored RE2 patterns matched against `action` and `resource.id`. Every construct keeps the rule
model's rules for absent fields and mismatched types: `NotAction`/`NotResource` and the negated
condition operators hold only for a string that is present, never for an absent or mistyped one.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from typing import Any

from domain.policy.errors import PolicyModelError
from domain.policy.model_document import (
    POLICY_ID,
    UnsupportedConstruct,
    collect_rules,
    is_valid_path,
)
from domain.policy.rule_model import (
    AllOf,
    AnyOf,
    Combining,
    Comparison,
    Condition,
    Effect,
    Location,
    Not,
    Operator,
    Policy,
    Rule,
    UnsupportedRule,
)

_REGEX_SPECIALS = frozenset("\\.+*?()|[]{}^$")
_STRING_OPERATORS = {"StringEquals", "StringNotEquals", "StringLike", "StringNotLike"}
_NUMERIC_OPERATORS = {
    "NumericEquals": Operator.EQ,
    "NumericNotEquals": Operator.NE,
    "NumericLessThan": Operator.LT,
    "NumericLessThanEquals": Operator.LTE,
    "NumericGreaterThan": Operator.GT,
    "NumericGreaterThanEquals": Operator.GTE,
}
# "the value is a string" in rule-model terms: starts_with "" holds for every string, only.
_IS_STRING = "starts_with"


def is_iam_document(document: Any) -> bool:
    return isinstance(document, Mapping) and "Statement" in document


def wildcard_pattern(wildcard: str) -> str:
    """IAM wildcard (`*` any run, `?` one character) as an anchored RE2 pattern."""
    parts: list[str] = []
    for char in wildcard:
        if char == "*":
            parts.append(".*")
        elif char == "?":
            parts.append(".")
        elif char in _REGEX_SPECIALS:
            parts.append("\\" + char)
        else:
            parts.append(char)
    return "(?s)^" + "".join(parts) + "$"


def _as_list(raw: Any, what: str, location: Location) -> list[Any]:
    values = raw if isinstance(raw, list) else [raw]
    if not values:
        raise PolicyModelError(f"{what} must not be empty", location)
    return values


def _is_string(field: str) -> Comparison:
    return Comparison(field, Operator.STARTS_WITH, "")


def wildcard_condition(field: str, wildcard: str) -> Comparison:
    """`field` matches the IAM wildcard: the simplest rule-model comparison that says so (a plain
    string is `eq`, `x*` is `starts_with`, `*x` is `ends_with`), else an anchored RE2 pattern."""
    stars, marks = wildcard.count("*"), wildcard.count("?")
    if not stars and not marks:
        return Comparison(field, Operator.EQ, wildcard)
    if not marks and stars == 1 and wildcard.endswith("*"):
        return Comparison(field, Operator.STARTS_WITH, wildcard[:-1])
    if not marks and stars == 1 and wildcard.startswith("*"):
        return Comparison(field, Operator.ENDS_WITH, wildcard[1:])
    return Comparison(field, Operator.MATCHES, wildcard_pattern(wildcard))


def _patterns_condition(field: str, raw: Any, what: str, location: Location) -> Condition:
    members: list[Condition] = []
    for item in _as_list(raw, what, location):
        if not isinstance(item, str):
            raise PolicyModelError(f"{what} entries must be strings", location)
        members.append(wildcard_condition(field, item))
    return members[0] if len(members) == 1 else AnyOf(tuple(members))


def _number(raw: Any, location: Location) -> int | float:
    """A Numeric* value: a JSON number or a string holding one (`"5"`, `"2.5"`, `"1e3"`)."""
    number: int | float
    if isinstance(raw, bool) or not isinstance(raw, int | float | str):
        raise PolicyModelError(f"not a number: {json.dumps(raw)}", location)
    if isinstance(raw, str):
        text = raw.strip()
        try:
            number = float(text) if any(c in text for c in ".eEnN") else int(text)
        except ValueError:
            raise PolicyModelError(f"not a number: {json.dumps(raw)}", location) from None
    else:
        number = raw
    if not math.isfinite(number):
        raise PolicyModelError(f"not a finite number: {json.dumps(raw)}", location)
    return number


def _text(raw: Any, operator: str, location: Location) -> str:
    """A String* value: a string, or a number or boolean read as its JSON text (`5` is "5")."""
    if isinstance(raw, str):
        return raw
    if isinstance(raw, bool | int) or (isinstance(raw, float) and math.isfinite(raw)):
        return json.dumps(raw)
    raise PolicyModelError(
        f"{operator} values must be strings, numbers or booleans, not {json.dumps(raw)}", location
    )


def _flag(raw: Any, operator: str, location: Location) -> bool:
    """A Bool/Null value: a boolean or the string "true"/"false" (any case)."""
    if isinstance(raw, bool):
        return raw
    if isinstance(raw, str) and raw.lower() in ("true", "false"):
        return raw.lower() == "true"
    raise PolicyModelError(
        f"{operator} values must be true or false, not {json.dumps(raw)}", location
    )


def _one_value(  # noqa: PLR0911 - one branch per IAM operator
    operator: str, key: str, value: Any, location: Location
) -> Condition:
    if operator == "StringEquals":
        return Comparison(key, Operator.EQ, _text(value, operator, location))
    if operator == "StringNotEquals":
        return AllOf(
            (_is_string(key), Comparison(key, Operator.NE, _text(value, operator, location)))
        )
    if operator == "StringLike":
        return wildcard_condition(key, _text(value, operator, location))
    if operator == "StringNotLike":
        return AllOf(
            (_is_string(key), Not(wildcard_condition(key, _text(value, operator, location))))
        )
    if operator in _NUMERIC_OPERATORS:
        number = _number(value, location)
        if operator == "NumericNotEquals":  # a number other than the value, nothing else
            return AnyOf(
                (Comparison(key, Operator.LT, number), Comparison(key, Operator.GT, number))
            )
        return Comparison(key, _NUMERIC_OPERATORS[operator], number)
    if operator == "Bool":
        return Comparison(key, Operator.EQ, _flag(value, operator, location))
    is_null = _flag(value, operator, location)  # Null: `_conditions` passes no other operator
    return Comparison(key, Operator.NOT_EXISTS if is_null else Operator.EXISTS)


def _conditions(raw: Any, location: Location) -> list[Condition]:
    if not isinstance(raw, Mapping):
        raise PolicyModelError("Condition must be an object", location)
    found: list[Condition] = []
    for operator, keys in raw.items():
        if operator.startswith(("ForAllValues:", "ForAnyValue:")) or operator.endswith("IfExists"):
            raise UnsupportedConstruct(f"IAM qualifier in '{operator}'")
        if operator not in _STRING_OPERATORS | set(_NUMERIC_OPERATORS) | {"Bool", "Null"}:
            raise UnsupportedConstruct(f"IAM condition operator '{operator}'")
        if not isinstance(keys, Mapping):
            raise PolicyModelError(f"{operator} must map request paths to values", location)
        for key, values in keys.items():
            if not is_valid_path(key):
                raise PolicyModelError(f"condition key '{key}' is not a request path", location)
            members = [
                _one_value(operator, key, v, location) for v in _as_list(values, key, location)
            ]
            if operator == "StringEquals" and len(members) > 1:
                texts = [_text(v, operator, location) for v in _as_list(values, key, location)]
                found.append(Comparison(key, Operator.IN, texts))
            else:
                found.append(members[0] if len(members) == 1 else AnyOf(tuple(members)))
    return found


def _statement(raw: Any, index: int, location: Location) -> Rule | UnsupportedRule:
    if not isinstance(raw, Mapping):
        raise PolicyModelError(f"Statement #{index + 1} must be an object", location)
    rule_id = raw.get("Sid") or f"statement-{index + 1}"
    if not isinstance(rule_id, str):
        raise PolicyModelError(f"Statement #{index + 1}: Sid must be a string", location)
    if raw.get("Effect") not in ("Allow", "Deny"):
        raise PolicyModelError(f"Statement {rule_id}: Effect must be Allow or Deny", location)
    members: list[Condition] = []
    for key, negated_key in (("Action", "NotAction"), ("Resource", "NotResource")):
        if key in raw and negated_key in raw:
            raise PolicyModelError(
                f"Statement {rule_id}: {key} and {negated_key} exclude each other", location
            )
    try:
        for key, field, negated in (
            ("Action", "action", False),
            ("NotAction", "action", True),
            ("Resource", "resource.id", False),
            ("NotResource", "resource.id", True),
        ):
            if key in raw:
                condition = _patterns_condition(field, raw[key], key, location)
                # NotAction is "a string action that matches none of these patterns": an absent
                # or non-string action makes it false, as `not_in` is on an absent field.
                members.append(AllOf((_is_string(field), Not(condition))) if negated else condition)
        if "Condition" in raw:
            members.extend(_conditions(raw["Condition"], location))
    except UnsupportedConstruct as unsupported:
        return UnsupportedRule(rule_id, str(unsupported), location)
    when: Condition | None = None
    if members:
        when = members[0] if len(members) == 1 else AllOf(tuple(members))
    return Rule(
        id=rule_id,
        effect=Effect.ALLOW if raw["Effect"] == "Allow" else Effect.DENY,
        when=when,
        location=location,
    )


def policy_from_iam(
    document: Mapping[str, Any],
    default_id: str,
    location: Location,
    statement_locations: Sequence[Location] = (),
) -> Policy:
    policy_id = document.get("Id", default_id)
    if not isinstance(policy_id, str) or not POLICY_ID.fullmatch(policy_id):
        raise PolicyModelError(f"IAM policy id must match [A-Za-z0-9_.-]+: {policy_id!r}", location)
    statements = _as_list(document["Statement"], "Statement", location)
    rules, unsupported = collect_rules(
        statements, _statement, statement_locations, location, policy_id, "Sid"
    )
    return Policy(
        policy_id=policy_id,
        rules=tuple(rules),
        combining=Combining.DENY_OVERRIDES,
        default=Effect.DENY,
        version=str(document.get("Version")) if document.get("Version") else None,
        unsupported=tuple(unsupported),
        source_format="iam",
        location=location,
    )
