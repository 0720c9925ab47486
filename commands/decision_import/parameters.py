"""The parameters of a decision import, checked all at once.

    {"format": "csv" | "jsonl" | "postgresql",   # else from the file's extension
     "column_mapping": {"source column": "field", ...},
     "delimiter": ",",                           # csv only
     "conninfo": "host=... dbname=...", "query": "SELECT ...",   # postgresql only
     "batch_size": 5000}

`conninfo` is a secret (it may carry a password): it is never part of an error, a log line or
a report, and whoever stores the parameters must seal it (`SECRET_PARAMETERS`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from commands.migration_kinds import JobSource
from domain.decision_import.fields import mapping_problems

FORMATS = ("csv", "jsonl", "postgresql")
EXTENSIONS = {".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl"}
SECRET_PARAMETERS = frozenset({"conninfo"})
DEFAULT_BATCH_SIZE = 5000
MAX_BATCH_SIZE = 50_000
MAX_QUERY = 65_536
_KNOWN = frozenset({"format", "column_mapping", "delimiter", "conninfo", "query", "batch_size"})


@dataclass(frozen=True)
class ImportParameters:
    format: str
    column_mapping: dict[str, str] = field(default_factory=dict)
    delimiter: str = ","
    batch_size: int = DEFAULT_BATCH_SIZE
    conninfo: str | None = field(default=None, repr=False)
    query: str | None = None

    def as_dict(self) -> dict[str, Any]:
        kept: dict[str, Any] = {
            "format": self.format,
            "column_mapping": dict(self.column_mapping),
            "batch_size": self.batch_size,
        }
        if self.format == "csv":
            kept["delimiter"] = self.delimiter
        if self.format == "postgresql":
            kept.update(conninfo=self.conninfo, query=self.query)
        return kept


def import_parameters(
    parameters: Mapping[str, Any], source: JobSource | None
) -> tuple[ImportParameters | None, list[dict[str, str]]]:
    """The parameters, or None, and every problem as `{field, message}`."""
    problems: list[dict[str, str]] = []

    def bad(name: str, message: str) -> None:
        problems.append({"field": name, "message": message})

    for name in sorted(set(parameters) - _KNOWN):
        bad(name, f"unknown parameter; the parameters are {', '.join(sorted(_KNOWN))}")
    kind = _format(parameters.get("format"), source, bad)
    mapping, mapping_errors = mapping_problems(parameters.get("column_mapping"))
    for message in mapping_errors:
        bad("column_mapping", message)
    delimiter = parameters.get("delimiter", ",")
    if not isinstance(delimiter, str) or len(delimiter) != 1 or delimiter in '\r\n"':
        bad("delimiter", "must be one character (not a quote or a line break)")
    batch_size = parameters.get("batch_size", DEFAULT_BATCH_SIZE)
    if (
        not isinstance(batch_size, int)
        or isinstance(batch_size, bool)
        or batch_size < 1
        or batch_size > MAX_BATCH_SIZE
    ):
        bad("batch_size", f"must be a whole number from 1 to {MAX_BATCH_SIZE}")
    conninfo, query = _query(parameters, kind, bad)
    if problems or kind is None:
        return None, problems
    return ImportParameters(
        format=kind,
        column_mapping=mapping,
        delimiter=delimiter,
        batch_size=batch_size,
        conninfo=conninfo,
        query=query,
    ), []


def _query(parameters: Mapping[str, Any], kind: str | None, bad: Any) -> tuple[str | None, ...]:
    """The connection string and query of the postgresql format (None for the others)."""
    conninfo, query = parameters.get("conninfo"), parameters.get("query")
    if kind != "postgresql":
        for name, value in (("conninfo", conninfo), ("query", query)):
            if value is not None:
                bad(name, "only for the postgresql format")
        return None, None
    if not isinstance(conninfo, str) or not conninfo.strip() or len(conninfo) > 4096:
        bad("conninfo", "a PostgreSQL connection string is required (libpq key=value or URI)")
        conninfo = None
    if not isinstance(query, str) or not query.strip() or len(query) > MAX_QUERY:
        bad("query", f"a SELECT of at most {MAX_QUERY} characters is required")
        return conninfo, None
    return conninfo, query.strip().rstrip(";").strip()


def _format(value: object, source: JobSource | None, bad: Any) -> str | None:
    if value is not None:
        if value not in FORMATS:
            bad("format", f"must be one of {', '.join(FORMATS)}")
            return None
        kind = str(value)
    elif source is not None:
        kind = EXTENSIONS.get(_extension(source.filename), "")
        if not kind:
            bad("format", "cannot tell from the file name: give csv or jsonl")
            return None
    else:
        bad("format", "give csv or jsonl with a source file, or postgresql with conninfo and query")
        return None
    if kind != "postgresql" and source is None:
        bad("source", f"a {kind} file is required")
    if kind == "postgresql" and source is not None:
        bad("source", "the postgresql format reads its query, not a file")
    return kind


def _extension(filename: str) -> str:
    dot = filename.rfind(".")
    return filename[dot:].lower() if dot >= 0 else ""
