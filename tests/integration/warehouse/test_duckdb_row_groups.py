"""DuckDB loads of whole row groups: written to the file at their commit (not through the
write-ahead log), they hold every row once, as loaded, across a load that fails after its
first table's row groups were written, a process killed during a load, a load that overlaps
the watermark, and the file closed and opened again."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pytest

from domain.warehouse import AUDIT_LOG, TABLES, ColumnType, Table
from infra.warehouses.duckdb import ROW_GROUP_SIZE, DuckDbWarehouse
from projections.sinks.warehouse_columns import arrow_schema

_AT = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
_PAD = "x" * 200  # a JSON value's bytes: a row group of them is megabytes


def _values(table: Table, name: str, kind: ColumnType, first: int, last: int) -> list[Any]:
    span = range(first, last + 1)
    if name == "position":
        return list(span)
    if kind is ColumnType.INT:
        return [n * 7 for n in span]
    if kind is ColumnType.TIMESTAMP:
        return [_AT] * len(span)
    if kind is ColumnType.JSON:
        return [f'{{"n": {n}, "table": "{table.name}", "pad": "{_PAD}"}}' for n in span]
    if kind is ColumnType.BOOL:
        return [n % 2 == 0 for n in span]
    return [f"{name}-{n}" for n in span]


def _tables(first: int, last: int) -> dict[str, pa.Table]:
    """Rows of positions `first` to `last` (each value says its position)."""
    return {
        t.name: pa.Table.from_pydict(
            {c.name: _values(t, c.name, c.type, first, last) for c in t.columns},
            schema=arrow_schema(t),
        )
        for t in TABLES
    }


def test_loads_of_whole_row_groups_hold_every_row_once_across_a_failed_load(
    tmp_path: Path,
) -> None:
    path = tmp_path / "rg.duckdb"
    warehouse = DuckDbWarehouse({}, path)
    assert warehouse.load_unit == ROW_GROUP_SIZE
    for table in TABLES:
        warehouse.create_table(table)
    aligned = 2 * ROW_GROUP_SIZE
    warehouse.load(_tables(1, aligned), aligned)  # two row groups a table, written at commit
    wal = path.with_name(path.name + ".wal")
    assert wal.stat().st_size < 200_000  # not the rows (8 MB of JSON alone): where they are
    broken = _tables(aligned + 1, 3 * ROW_GROUP_SIZE + 500)
    audit = broken[AUDIT_LOG.name]
    index = audit.schema.get_field_index("event_id")
    nulls = pa.nulls(audit.num_rows, pa.string())
    broken[AUDIT_LOG.name] = audit.set_column(index, pa.field("event_id", pa.string()), nulls)
    with pytest.raises(duckdb.Error):  # governance_events' rows went in, then audit_log's fail
        warehouse.load(broken, 3 * ROW_GROUP_SIZE + 500)
    assert warehouse.watermark() == aligned
    last = 3 * ROW_GROUP_SIZE + 77
    warehouse.load(_tables(1, last), last)  # overlaps the watermark: only what is new goes in
    warehouse.close()
    DuckDbWarehouse({}, path).close()  # opened and closed again
    with duckdb.connect(str(path), read_only=True) as db:
        for table in TABLES:
            names = ", ".join(f'"{c.name}"' for c in table.columns)
            found = db.execute(f'SELECT {names} FROM "{table.name}" ORDER BY position').fetchall()
            wanted = _tables(1, last)[table.name].to_pylist()
            assert len(found) == last, table.name
            assert [dict(zip(table.names, row, strict=True)) for row in found] == wanted
        written = db.execute(
            "SELECT count(DISTINCT row_group_id) FROM pragma_storage_info('governance_events') "
            "WHERE persistent"
        ).fetchone()
        assert written is not None
        assert written[0] >= 4
        assert db.execute("SELECT position FROM _acgs_watermark").fetchall() == [(last,)]


_LOADER = """
import sys
from pathlib import Path
from infra.warehouses.duckdb import ROW_GROUP_SIZE, DuckDbWarehouse
from domain.warehouse import TABLES
from tests.integration.warehouse.test_duckdb_row_groups import _tables
warehouse = DuckDbWarehouse({}, Path(sys.argv[1]))
for table in TABLES:
    warehouse.create_table(table)
size = 2 * ROW_GROUP_SIZE
for start in range(0, 40 * size, size):
    warehouse.load(_tables(start + 1, start + size), start + size)
    print(start + size, flush=True)
"""


def test_a_process_killed_while_it_writes_row_groups_leaves_whole_loads_only(
    tmp_path: Path,
) -> None:
    """Loads of whole row groups in their own process, killed (SIGKILL) during a load: the
    file opened again holds the loads committed, each row once, up to the watermark, and the
    next load (overlapping them) adds the rest."""
    path = tmp_path / "kill.duckdb"
    root = Path(__file__).resolve().parents[3]
    child = subprocess.Popen(
        [sys.executable, "-c", _LOADER, str(path)],
        cwd=root,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None
        committed = [int(child.stdout.readline()) for _ in range(3)]
        time.sleep(0.05)  # into the next load
        os.kill(child.pid, signal.SIGKILL)
    finally:
        child.wait(30)
        if child.stdout is not None:
            child.stdout.close()
    warehouse = DuckDbWarehouse({}, path)
    loaded = warehouse.watermark()
    assert loaded >= committed[-1]
    with warehouse._open() as con:
        for table in TABLES:
            found = con.execute(
                f'SELECT count(*), count(DISTINCT position), max(position) FROM "{table.name}"'
            ).fetchone()
            assert found == (loaded, loaded, loaded), table.name
    last = loaded + ROW_GROUP_SIZE + 5
    warehouse.load(_tables(1, last), last)
    warehouse.close()
    with duckdb.connect(str(path), read_only=True) as db:
        for table in TABLES:
            names = ", ".join(f'"{c.name}"' for c in table.columns)
            found_rows = db.execute(
                f'SELECT {names} FROM "{table.name}" ORDER BY position'
            ).fetchall()
            assert [dict(zip(table.names, row, strict=True)) for row in found_rows] == (
                _tables(1, last)[table.name].to_pylist()
            ), table.name
