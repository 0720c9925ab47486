"""JSON value semantics of the rule model: equality, ordering, types (legacy-formats.md, "Meaning").

Python's `True == 1` is not JSON's: booleans are not numbers here, exactly as in Rego.
"""

from __future__ import annotations

import json
from typing import Any


def is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def json_equal(left: Any, right: Any) -> bool:
    if isinstance(left, bool) or isinstance(right, bool):
        return isinstance(left, bool) and isinstance(right, bool) and left is right
    if is_number(left) or is_number(right):
        return is_number(left) and is_number(right) and left == right
    if isinstance(left, list) or isinstance(right, list):
        return (
            isinstance(left, list)
            and isinstance(right, list)
            and len(left) == len(right)
            and all(json_equal(a, b) for a, b in zip(left, right, strict=True))
        )
    if isinstance(left, dict) or isinstance(right, dict):
        return (
            isinstance(left, dict)
            and isinstance(right, dict)
            and left.keys() == right.keys()
            and all(json_equal(left[key], right[key]) for key in left)
        )
    return type(left) is type(right) and bool(left == right)


def orderable(left: Any, right: Any) -> bool:
    """`gt`/`gte`/`lt`/`lte` hold only between two numbers or two strings."""
    both_numbers = is_number(left) and is_number(right)
    return both_numbers or (isinstance(left, str) and isinstance(right, str))


def canonical(value: Any) -> Any:
    """A form in which equal JSON values are equal Python values (integral floats become ints)."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, list):
        return [canonical(item) for item in value]
    if isinstance(value, dict):
        return {key: canonical(item) for key, item in value.items()}
    return value


def canonical_text(value: Any) -> str:
    return json.dumps(canonical(value), sort_keys=True, ensure_ascii=False, separators=(",", ":"))
