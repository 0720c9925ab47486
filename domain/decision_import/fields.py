"""The fields of a legacy decision, and the schema mapping that renames a source's columns."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

FIELDS = (
    "decision_id",
    "timestamp",
    "principal",
    "action",
    "resource",
    "context",
    "decision",
    "reason",
    "policy_id",
    "latency_ms",
)
REQUIRED = ("timestamp", "principal", "action", "resource", "decision")
MAX_MAPPED_COLUMNS = 100


def mapping_problems(value: object) -> tuple[dict[str, str], list[str]]:
    """The mapping `{source column: field}` kept, and what is wrong with `value` (each problem
    once: not an object, a field that is not one of `FIELDS`, two columns onto one field)."""
    if value is None:
        return {}, []
    if not isinstance(value, Mapping) or len(value) > MAX_MAPPED_COLUMNS:
        return {}, [f"must be an object of at most {MAX_MAPPED_COLUMNS} source column names"]
    problems: list[str] = []
    kept: dict[str, str] = {}
    for column, field in value.items():
        if not isinstance(column, str) or not column or len(column) > 255:
            problems.append("each source column name must be 1 to 255 characters")
        elif field not in FIELDS:
            problems.append(f"{column!r} maps to {field!r}; the fields are {', '.join(FIELDS)}")
        elif field in kept.values():
            problems.append(f"two columns map to {field!r}")
        else:
            kept[column] = field
    return kept, list(dict.fromkeys(problems))


def renamed(columns: Iterable[str], mapping: Mapping[str, str]) -> dict[str, int]:
    """The position of each field among a source's `columns`, after the mapping renamed them
    (a mapped column wins over an unmapped one of the field's own name; others are ignored)."""
    positions: dict[str, int] = {}
    mapped_fields = set(mapping.values())
    for index, column in enumerate(columns):
        field = mapping.get(column)
        if field is None and column in FIELDS and column not in mapped_fields:
            field = column
        if field is not None and field not in positions:
            positions[field] = index
    return positions


def missing_fields(present: Iterable[str]) -> list[str]:
    """The required fields a source lacks."""
    have = set(present)
    return [field for field in REQUIRED if field not in have]


def renamed_record(record: Mapping[str, Any], mapping: Mapping[str, str]) -> dict[str, Any]:
    """One record (a JSON object, a query row) with its keys renamed to the fields."""
    if not mapping:
        return dict(record)
    positions = renamed(record, mapping)
    keys = list(record)
    return {field: record[keys[index]] for field, index in positions.items()}
