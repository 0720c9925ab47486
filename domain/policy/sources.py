"""One source text (a file's content) into its policies, whatever the legacy format.

Formats: `.json` (rule model or IAM, told apart by content), `.yaml`/`.yml`, `.rules` (the DSL).
A fault stops only the policy it belongs to; it becomes an UnparsedPolicy naming the place.
A source over a bound of `PolicyLimits` is refused before it costs more than its size.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from enum import StrEnum
from pathlib import PurePath
from typing import Any

import yaml

from domain.policy.document_bounds import (
    check_json_document,
    check_yaml_events,
    locate_json_problem,
)
from domain.policy.dsl_format import parse_policy_block, split_policy_blocks
from domain.policy.errors import PolicyLimitExceeded, PolicyModelError, PolicySyntaxError
from domain.policy.iam_format import is_iam_document, policy_from_iam
from domain.policy.limits import (
    DEFAULT_LIMITS,
    PolicyLimits,
    check_policy,
    source_too_large,
    too_many_policies,
)
from domain.policy.model_document import policy_from_document
from domain.policy.rule_model import Location, Policy
from domain.policy.source_positions import find_keyed_string, locate_json_rules, location_at

_YAML_LOADER: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class SourceFormat(StrEnum):
    AUTO = "auto"
    JSON = "json"
    YAML = "yaml"
    DSL = "dsl"
    IAM = "iam"


EXTENSIONS = {".json": SourceFormat.JSON, ".yaml": SourceFormat.YAML, ".yml": SourceFormat.YAML}
EXTENSIONS[".rules"] = SourceFormat.DSL


@dataclass(frozen=True, slots=True)
class UnparsedPolicy:
    """A policy (or a whole file) that could not be read; `name` is the best id known."""

    name: str
    error: PolicySyntaxError | PolicyModelError | PolicyLimitExceeded
    source_format: str


Parsed = Policy | UnparsedPolicy


# The keys of the report.json that `acgs policy convert` writes: a file the toolkit wrote is never
# read back as a legacy policy (a directory holding modules and reports is a directory of Rego).
_REPORT_KEYS = frozenset({"constitutional_hash", "engine", "totals", "policies"})


def is_conversion_report(document: Any) -> bool:
    return (
        isinstance(document, dict)
        and document.keys() >= _REPORT_KEYS
        and isinstance(document["totals"], dict)
        and "policy_id" not in document
    )


def format_of(file: str, requested: SourceFormat = SourceFormat.AUTO) -> SourceFormat | None:
    if requested is not SourceFormat.AUTO:
        return requested
    return EXTENSIONS.get(PurePath(file).suffix.lower())


def parse_source(
    file: str,
    text: str,
    requested: SourceFormat = SourceFormat.AUTO,
    limits: PolicyLimits = DEFAULT_LIMITS,
) -> list[Parsed]:
    source_format = format_of(file, requested)
    stem = PurePath(file).stem
    size = len(text)  # never more characters than UTF-8 bytes: a longer text is refused unencoded
    if size <= limits.source_bytes < size * 4:
        size = len(text.encode("utf-8"))
    if size > limits.source_bytes:
        return [oversized_source(file, size, limits, source_format)]
    if source_format is SourceFormat.DSL:
        found = _parse_dsl(file, text, limits)
    elif source_format is SourceFormat.YAML:
        found = _parse_yaml(file, text, stem, limits)
    elif source_format in (SourceFormat.JSON, SourceFormat.IAM):
        found = _parse_json(file, text, stem, limits, iam_only=source_format is SourceFormat.IAM)
    else:
        error = PolicyModelError("unknown file type (use --format)", Location(file))
        return [UnparsedPolicy(stem, error, "unknown")]
    return [_bounded(parsed, limits) for parsed in found]


def oversized_source(
    file: str, size: int, limits: PolicyLimits, source_format: SourceFormat | None = None
) -> UnparsedPolicy:
    """A source refused for its size alone, unread (`size` in bytes)."""
    name = source_format.value if source_format is not None else "unknown"
    return UnparsedPolicy(PurePath(file).stem, source_too_large(file, size, limits), name)


def _bounded(parsed: Parsed, limits: PolicyLimits) -> Parsed:
    if isinstance(parsed, UnparsedPolicy):
        return parsed
    try:
        check_policy(parsed, limits)
    except PolicyLimitExceeded as error:
        return UnparsedPolicy(parsed.policy_id, error, parsed.source_format)
    return parsed


def _parse_dsl(file: str, text: str, limits: PolicyLimits) -> list[Parsed]:
    blocks = split_policy_blocks(text, limits.source_policies + 2)
    if len(blocks) > limits.source_policies:
        extra = blocks[limits.source_policies]
        refused = too_many_policies(file, limits, Location(file, extra.line, extra.column))
        return [UnparsedPolicy(PurePath(file).stem, refused, "dsl")]
    found: list[Parsed] = []
    for number, block in enumerate(blocks, start=1):
        try:
            found.append(parse_policy_block(block, file, limits))
        except (PolicySyntaxError, PolicyLimitExceeded) as error:
            name = error.policy_id or block.declared_id or f"{PurePath(file).stem}#{number}"
            found.append(UnparsedPolicy(name, error, "dsl"))
    return found


def _parse_json(
    file: str, text: str, stem: str, limits: PolicyLimits, *, iam_only: bool
) -> list[Parsed]:
    try:
        document = _json_document(file, text, limits)
    except (PolicySyntaxError, PolicyLimitExceeded) as failure:
        return [UnparsedPolicy(stem, failure, "iam" if iam_only else "json")]
    if not iam_only and is_conversion_report(document):
        return []
    if iam_only or is_iam_document(document):
        return [_iam_policy(file, text, stem, document)]
    if isinstance(document, dict) and isinstance(document.get("policies"), list):
        items = document["policies"]
    else:
        items = [document]
    if len(items) > limits.source_policies:
        where = location_at(file, text, max(text.find('"policies"'), 0))
        return [UnparsedPolicy(stem, too_many_policies(file, limits, where), "json")]
    found: list[Parsed] = []
    cursor = 0
    for number, item in enumerate(items, start=1):
        name = item.get("policy_id") if isinstance(item, dict) else None
        name = name if isinstance(name, str) else f"{stem}#{number}"
        rule_ids = [rule.get("id") if isinstance(rule, dict) else None for rule in _rules_of(item)]
        location, rule_locations = locate_json_rules(
            file, text, "policy_id", name, rule_ids, start=cursor
        )
        cursor = max(cursor, find_keyed_string(text, "policy_id", name, cursor) + 1)
        try:
            found.append(policy_from_document(item, location, rule_locations, "json"))
        except PolicyModelError as error:
            found.append(UnparsedPolicy(name, error, "json"))
    return found


def _json_document(file: str, text: str, limits: PolicyLimits) -> Any:
    """The decoded document, within the bounds; PolicySyntaxError or PolicyLimitExceeded."""
    try:
        document = json.loads(text)
    except json.JSONDecodeError as error:
        raise PolicySyntaxError(error.msg, Location(file, error.lineno, error.colno)) from None
    except RecursionError:
        raise locate_json_problem(file, text, "document_depth", limits) from None
    except ValueError as error:  # e.g. an integer of more digits than Python converts
        raise PolicySyntaxError(f"unreadable number ({error})", Location(file, 1, 1)) from None
    check_json_document(file, text, document, limits)
    return document


def _rules_of(item: Any) -> list[Any]:
    rules = item.get("rules") if isinstance(item, dict) else None
    return rules if isinstance(rules, list) else []


def _iam_policy(file: str, text: str, stem: str, document: Any) -> Parsed:
    if not is_iam_document(document):
        error = PolicyModelError("not an IAM document (no 'Statement')", Location(file, 1, 1))
        return UnparsedPolicy(stem, error, "iam")
    statements = document["Statement"] if isinstance(document["Statement"], list) else []
    sids = [s.get("Sid") if isinstance(s, dict) else None for s in statements]
    location = location_at(file, text, 0)
    statement_locations = []
    cursor = 0
    for sid in sids:
        found = find_keyed_string(text, "Sid", sid, cursor) if isinstance(sid, str) else -1
        cursor = found + 1 if found >= 0 else cursor
        statement_locations.append(location_at(file, text, max(found, 0)))
    try:
        return policy_from_iam(document, stem, location, statement_locations)
    except PolicyModelError as error:
        name = document.get("Id") if isinstance(document.get("Id"), str) else stem
        return UnparsedPolicy(str(name), error, "iam")


def _parse_yaml(file: str, text: str, stem: str, limits: PolicyLimits) -> list[Parsed]:
    try:
        check_yaml_events(file, text, limits, _YAML_LOADER)
    except PolicyLimitExceeded as refused:
        return [UnparsedPolicy(stem, refused, "yaml")]
    found: list[Parsed] = []
    loader = _YAML_LOADER(text)
    number = 0
    try:
        while loader.check_node():
            node = loader.get_node()
            number += 1
            found.append(_yaml_policy(file, stem, number, loader, node))
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        location = Location(file, mark.line + 1, mark.column + 1) if mark else Location(file)
        problem = error.problem or error.context or "invalid YAML"
        found.append(
            UnparsedPolicy(f"{stem}#{number + 1}", PolicySyntaxError(problem, location), "yaml")
        )
    except yaml.YAMLError as error:
        failure = PolicySyntaxError(str(error), Location(file, 1, 1))
        found.append(UnparsedPolicy(f"{stem}#{number + 1}", failure, "yaml"))
    finally:
        loader.dispose()
    return found


def _yaml_policy(file: str, stem: str, number: int, loader: Any, node: Any) -> Parsed:
    location = Location(file, node.start_mark.line + 1, node.start_mark.column + 1)
    rule_locations: list[Location] = []
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            if key.value == "rules" and isinstance(value, yaml.SequenceNode):
                rule_locations = [
                    Location(file, item.start_mark.line + 1, item.start_mark.column + 1)
                    for item in value.value
                ]
    document = loader.construct_document(node)
    name = document.get("policy_id") if isinstance(document, dict) else None
    name = name if isinstance(name, str) else f"{stem}#{number}"
    try:
        return policy_from_document(document, location, rule_locations, "yaml")
    except PolicyModelError as error:
        return UnparsedPolicy(name, error, "yaml")
