"""Builds the rule model from a decoded JSON or YAML document (legacy-formats.md, formats 1, 2)."""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from domain.policy.errors import PolicyModelError
from domain.policy.rule_model import (
    VALUELESS_OPERATORS,
    AllOf,
    AnyOf,
    Combining,
    Comparison,
    Condition,
    Effect,
    Location,
    Not,
    Obligation,
    Operator,
    Policy,
    Rule,
    UnsupportedRule,
)

POLICY_ID = re.compile(r"[A-Za-z0-9_.-]+")
PATH_SEGMENT = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*")
LEGACY_SCRIPT_OPERATOR = "script"


class UnsupportedConstruct(Exception):
    """Raised inside a rule that cannot be translated; the rule becomes an UnsupportedRule."""


def is_valid_path(path: object) -> bool:
    if not isinstance(path, str) or not path:
        return False
    return all(PATH_SEGMENT.fullmatch(segment) for segment in path.split("."))


def check_json_value(value: Any, where: str, location: Location) -> None:
    """Reject what JSON cannot carry (YAML dates, NaN, non-string keys)."""
    if value is None or isinstance(value, bool | int | str):
        return
    if isinstance(value, float):
        if not math.isfinite(value):
            raise PolicyModelError(f"{where}: non-finite number", location)
        return
    if isinstance(value, list):
        for item in value:
            check_json_value(item, where, location)
        return
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise PolicyModelError(f"{where}: object keys must be strings", location)
            check_json_value(item, where, location)
        return
    raise PolicyModelError(f"{where}: {type(value).__name__} is not a JSON value", location)


def parse_condition(raw: Any, location: Location) -> Condition:
    if not isinstance(raw, Mapping):
        raise PolicyModelError("a condition must be an object", location)
    compound = {"all", "any", "not"} & set(raw)
    if compound:
        if len(raw) != 1:
            raise PolicyModelError(f"'{next(iter(compound))}' must be the only key", location)
        key, member = next(iter(raw.items()))
        if key == "not":
            return Not(parse_condition(member, location))
        if not isinstance(member, list):
            raise PolicyModelError(f"'{key}' takes a list of conditions", location)
        members = tuple(parse_condition(item, location) for item in member)
        return AllOf(members) if key == "all" else AnyOf(members)
    return parse_comparison(raw, location)


def parse_comparison(raw: Mapping[str, Any], location: Location) -> Comparison:
    op_name = raw.get("op")
    if op_name == LEGACY_SCRIPT_OPERATOR:
        raise UnsupportedConstruct("inline script of the legacy engine ('op': 'script')")
    if not isinstance(op_name, str):
        raise PolicyModelError("a comparison needs 'op' (a string)", location)
    try:
        op = Operator(op_name)
    except ValueError:
        raise UnsupportedConstruct(f"unknown operator '{op_name}'") from None
    field = raw.get("field")
    if not is_valid_path(field):
        raise PolicyModelError(f"invalid or missing 'field' path: {field!r}", location)
    unknown_keys = set(raw) - {"field", "op", "value", "value_field"}
    if unknown_keys:
        raise PolicyModelError(f"unknown keys in comparison: {sorted(unknown_keys)}", location)
    if op in VALUELESS_OPERATORS:
        return Comparison(str(field), op)
    if "value" in raw and "value_field" in raw:
        raise PolicyModelError("give either 'value' or 'value_field', not both", location)
    if "value_field" in raw:
        value_field = raw["value_field"]
        if not is_valid_path(value_field):
            raise PolicyModelError(f"invalid 'value_field' path: {value_field!r}", location)
        if op is Operator.MATCHES:
            raise UnsupportedConstruct("'matches' against a pattern read from the request")
        return Comparison(str(field), op, value_field=str(value_field))
    if "value" not in raw:
        raise PolicyModelError(f"operator '{op.value}' needs 'value' or 'value_field'", location)
    check_json_value(raw["value"], "value", location)
    return Comparison(str(field), op, value=raw["value"])


def parse_obligations(raw: Any, location: Location) -> tuple[Obligation, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise PolicyModelError("'obligations' must be a list", location)
    found: list[Obligation] = []
    for item in raw:
        if not isinstance(item, dict) or not isinstance(item.get("type"), str):
            raise PolicyModelError("an obligation is an object with a string 'type'", location)
        check_json_value(item, "obligation", location)
        found.append(Obligation.of(item))
    return tuple(found)


def parse_rule(raw: Any, index: int, location: Location) -> Rule | UnsupportedRule:
    if not isinstance(raw, Mapping):
        raise PolicyModelError(f"rule #{index + 1} must be an object", location)
    rule_id = raw.get("id")
    if not isinstance(rule_id, str) or not rule_id:
        raise PolicyModelError(f"rule #{index + 1} needs an 'id' (a string)", location)
    try:
        effect = Effect(str(raw.get("effect")))
    except ValueError:
        raise PolicyModelError(
            f"rule {rule_id}: 'effect' must be allow or deny", location, None
        ) from None
    priority = raw.get("priority", 0)
    if isinstance(priority, bool) or not isinstance(priority, int):
        raise PolicyModelError(f"rule {rule_id}: 'priority' must be an integer", location)
    reason = raw.get("reason")
    if reason is not None and not isinstance(reason, str):
        raise PolicyModelError(f"rule {rule_id}: 'reason' must be a string", location)
    try:
        when = parse_condition(raw["when"], location) if raw.get("when") is not None else None
    except UnsupportedConstruct as unsupported:
        return UnsupportedRule(rule_id, str(unsupported), location)
    return Rule(
        id=rule_id,
        effect=effect,
        when=when,
        priority=priority,
        reason=reason,
        obligations=parse_obligations(raw.get("obligations"), location),
        location=location,
    )


def _optional_text(raw: Mapping[str, Any], key: str, location: Location) -> str | None:
    value = raw.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise PolicyModelError(f"'{key}' must be a string", location)
    return str(value)


def collect_rules(
    raw_rules: Sequence[Any],
    parse: Callable[[Any, int, Location], Rule | UnsupportedRule],
    locations: Sequence[Location],
    fallback: Location,
    policy_id: str,
    id_label: str,
) -> tuple[list[Rule], list[UnsupportedRule]]:
    """Parse each rule (or IAM statement) at its location; ids must be unique in the policy.
    Returns the convertible rules and, apart, those flagged for manual review."""
    rules: list[Rule] = []
    unsupported: list[UnsupportedRule] = []
    seen: set[str] = set()
    for index, raw_rule in enumerate(raw_rules):
        where = locations[index] if index < len(locations) else fallback
        try:
            parsed = parse(raw_rule, index, where)
        except PolicyModelError as bad:
            raise PolicyModelError(bad.reason, bad.location, policy_id) from None
        if parsed.id in seen:
            raise PolicyModelError(f"duplicate {id_label} '{parsed.id}'", where, policy_id)
        seen.add(parsed.id)
        if isinstance(parsed, UnsupportedRule):
            unsupported.append(parsed)
        else:
            rules.append(parsed)
    return rules, unsupported


def policy_from_document(
    raw: Any,
    location: Location,
    rule_locations: Sequence[Location] = (),
    source_format: str = "json",
) -> Policy:
    """One rule-model document into a Policy; raises PolicyModelError naming the place."""
    if not isinstance(raw, Mapping):
        raise PolicyModelError("a policy must be an object", location)
    policy_id = raw.get("policy_id")
    if not isinstance(policy_id, str) or not POLICY_ID.fullmatch(policy_id):
        raise PolicyModelError(
            f"'policy_id' must match [A-Za-z0-9_.-]+, got {policy_id!r}", location
        )
    try:
        combining = Combining(raw.get("combining", Combining.DENY_OVERRIDES.value))
        default = Effect(raw.get("default", Effect.DENY.value))
    except ValueError as bad:
        raise PolicyModelError(str(bad), location, policy_id) from None
    raw_rules = raw.get("rules", [])
    if not isinstance(raw_rules, list):
        raise PolicyModelError("'rules' must be a list", location, policy_id)
    rules, unsupported = collect_rules(
        raw_rules, parse_rule, rule_locations, location, policy_id, "rule id"
    )
    return Policy(
        policy_id=policy_id,
        rules=tuple(rules),
        combining=combining,
        default=default,
        name=_optional_text(raw, "name", location),
        description=_optional_text(raw, "description", location),
        version=_optional_text(raw, "version", location),
        unsupported=tuple(unsupported),
        source_format=source_format,
        location=location,
    )
