"""The warehouse tables and the one rule of schema evolution: a new column is added, anything
else refused naming the column; the Arrow tables of a chunk follow the definitions."""

from __future__ import annotations

from pathlib import Path

import pytest

from domain.errors import ValidationFailed
from domain.integration.values import IntegrationType
from domain.warehouse import (
    AUDIT_LOG,
    GOVERNANCE_EVENTS,
    TABLES,
    ColumnType,
    SchemaRefused,
    evolution,
    without,
)
from infra.connectivity import CHECKS
from infra.warehouses import open_warehouse
from projections.sinks.warehouse import Chunk, arrow_schema


def _found(table: object) -> dict[str, str]:
    return {c.name: c.type.value for c in table.columns}  # type: ignore[attr-defined]


def test_a_table_as_defined_needs_nothing() -> None:
    for table in TABLES:
        assert evolution(table, _found(table)) == []


def test_a_missing_column_is_added() -> None:
    older = _found(without(GOVERNANCE_EVENTS, "constitutional_hash", "actor_type"))
    added = evolution(GOVERNANCE_EVENTS, older)
    assert [c.name for c in added] == ["actor_type", "constitutional_hash"]


def test_a_column_of_another_type_is_refused_naming_it() -> None:
    found = _found(GOVERNANCE_EVENTS) | {"position": "string"}
    with pytest.raises(SchemaRefused) as refused:
        evolution(GOVERNANCE_EVENTS, found, prefix="acgs_")
    assert refused.value.details == {"table": "acgs_governance_events", "column": "position"}
    assert "column position is string, expected int64" in refused.value.message
    assert isinstance(refused.value, ValidationFailed)


def test_a_column_the_release_does_not_define_is_refused_naming_it() -> None:
    found = _found(AUDIT_LOG) | {"legacy_flag": "bool"}
    with pytest.raises(SchemaRefused, match="column legacy_flag is not defined"):
        evolution(AUDIT_LOG, found)


def test_every_table_is_keyed_by_event_id_and_position() -> None:
    for table in TABLES:
        assert (table.columns[0].name, table.columns[0].type) == ("event_id", ColumnType.STRING)
        assert (table.columns[1].name, table.columns[1].type) == ("position", ColumnType.INT)
        assert not table.columns[0].nullable


def test_a_chunk_becomes_arrow_tables_of_the_defined_schema() -> None:
    chunk = Chunk({t.name: {c.name: [] for c in t.columns} for t in TABLES}, 0)
    tables = chunk.arrow(TABLES)
    for table in TABLES:
        assert tables[table.name].schema == arrow_schema(table)
        assert tables[table.name].num_rows == 0


def test_a_duckdb_warehouse_without_a_path_passes_its_connectivity_check() -> None:
    result = CHECKS[IntegrationType.DATA_WAREHOUSE]({"provider": "duckdb"})
    assert (result.connection_established, result.failure) == (True, None)
    missing = CHECKS[IntegrationType.DATA_WAREHOUSE](
        {"provider": "duckdb", "database_path": "/nonexistent-dir/x/w.duckdb"}
    )
    assert missing.failure is not None


def test_an_unknown_warehouse_provider_is_refused_by_name(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown warehouse provider 'oracle'"):
        open_warehouse({"provider": "oracle"}, tmp_path / "w.duckdb")
    assert not (tmp_path / "w.duckdb").exists()
