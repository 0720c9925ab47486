"""The import's parameters: the format from the file name, the postgresql-only fields, every
bad field at once, and a connection string that never shows."""

from __future__ import annotations

from pathlib import Path

from commands.decision_import.parameters import ImportParameters, import_parameters
from commands.migration_kinds import JobSource
from domain.decision_import.fields import mapping_problems, renamed, renamed_record


def _source(name: str) -> JobSource:
    return JobSource(path=Path("/nowhere") / name, filename=name)


def test_the_format_follows_the_file_name() -> None:
    for name, kind in (("a.CSV", "csv"), ("b.jsonl", "jsonl"), ("c.ndjson", "jsonl")):
        checked, problems = import_parameters({}, _source(name))
        assert (checked.format if checked else None, problems) == (kind, [])
    checked, problems = import_parameters({}, _source("legacy.txt"))
    assert (checked, [p["field"] for p in problems]) == (None, ["format"])


def test_postgresql_needs_its_connection_and_query_and_nothing_else_takes_them() -> None:
    checked, problems = import_parameters({"format": "postgresql"}, _source("x.csv"))
    assert checked is None
    assert sorted(p["field"] for p in problems) == ["conninfo", "query", "source"]
    _, problems = import_parameters({"conninfo": "host=x", "query": "SELECT 1"}, _source("x.csv"))
    assert sorted(p["field"] for p in problems) == ["conninfo", "query"]
    checked, problems = import_parameters(
        {"format": "postgresql", "conninfo": "password=s3cret host=x", "query": " SELECT 1 ;; "},
        None,
    )
    assert problems == []
    assert checked is not None
    assert checked.query == "SELECT 1"
    assert "s3cret" not in repr(checked)


def test_the_kept_parameters_are_those_of_the_format() -> None:
    checked = ImportParameters(format="csv", delimiter=";", column_mapping={"who": "principal"})
    assert checked.as_dict() == {
        "format": "csv",
        "column_mapping": {"who": "principal"},
        "batch_size": 5000,
        "delimiter": ";",
    }


def test_mapping_problems_are_each_named_once() -> None:
    kept, problems = mapping_problems({"a": "principal", "b": "principal", "c": "nope", "d": "x"})
    assert kept == {"a": "principal"}
    assert problems == [
        "two columns map to 'principal'",
        "'c' maps to 'nope'; the fields are decision_id, timestamp, principal, action, "
        "resource, context, decision, reason, policy_id, latency_ms",
        "'d' maps to 'x'; the fields are decision_id, timestamp, principal, action, resource, "
        "context, decision, reason, policy_id, latency_ms",
    ]
    assert mapping_problems(["principal"]) == (
        {},
        ["must be an object of at most 100 source column names"],
    )


def test_a_mapped_column_wins_over_one_of_the_fields_own_name() -> None:
    assert renamed(["decision", "effect", "who"], {"effect": "decision", "who": "principal"}) == {
        "decision": 1,
        "principal": 2,
    }
    assert renamed_record({"effect": "deny", "decision": "allow"}, {"effect": "decision"}) == {
        "decision": "deny"
    }
