"""Line and column of things inside a source text, for reports that point at the right place."""

from __future__ import annotations

import json
from collections.abc import Sequence

from domain.policy.rule_model import Location


def location_at(file: str, text: str, offset: int) -> Location:
    line = text.count("\n", 0, offset) + 1
    column = offset - (text.rfind("\n", 0, offset) + 1) + 1
    return Location(file, line, column)


def find_keyed_string(text: str, key: str, value: str, start: int = 0) -> int:
    """Offset of `"key": "value"` in JSON text at or after `start` (-1 when absent)."""
    needle = json.dumps(value, ensure_ascii=False)
    quoted_key = f'"{key}"'
    position = text.find(needle, start)
    while position >= 0:
        colon = _skip_back_whitespace(text, position)
        if colon >= 0 and text[colon] == ":":
            key_end = _skip_back_whitespace(text, colon) + 1
            key_start = key_end - len(quoted_key)
            if key_start >= 0 and text[key_start:key_end] == quoted_key:
                return key_start
        position = text.find(needle, position + 1)
    return -1


def _skip_back_whitespace(text: str, position: int) -> int:
    """Index of the last non-blank character before `position` (-1 when none)."""
    index = position - 1
    while index >= 0 and text[index] in " \t\r\n":
        index -= 1
    return index


def locate_json_rules(
    file: str,
    text: str,
    policy_key: str,
    policy_id: str,
    rule_ids: Sequence[object],
    *,
    start: int = 0,
) -> tuple[Location, list[Location]]:
    """Best-effort positions of a policy and of its rules (by their ids) in JSON text."""
    policy_offset = find_keyed_string(text, policy_key, policy_id, start)
    if policy_offset < 0:
        policy_offset = start
    cursor = policy_offset
    rules: list[Location] = []
    for rule_id in rule_ids:
        found = find_keyed_string(text, "id", rule_id, cursor) if isinstance(rule_id, str) else -1
        if found >= 0:
            cursor = found + 1
        rules.append(location_at(file, text, found if found >= 0 else policy_offset))
    return location_at(file, text, policy_offset), rules
