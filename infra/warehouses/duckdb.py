"""DuckDB, the embedded default: a database file (the configured `database_path`, else one
under the data directory). Each chunk goes in through Arrow (`INSERT ... BY NAME SELECT` from
the registered Arrow table: no row-by-row insert) together with the watermark, in one
transaction. The file is open only during a sync (`release` closes it at its end): DuckDB lets
one process write a file at a time, so a sync in another process (`acgs warehouse sync` beside
a running worker) is refused only while a sync runs, not between syncs.

No event goes in twice, without a primary key: a load reads the watermark in its own
transaction and inserts only the rows after it (a chunk that overlaps what is loaded adds only
what is new), and moves the watermark in that same transaction (a load that dies leaves
neither). Tables this adapter creates have no primary key on `event_id`: maintaining its index
was half of an insert's cost. A table an older release created with the key is rebuilt without
it when the warehouse is opened (`_drop_keys`: once, in one transaction; rows, column types and
NOT NULL kept). During a
sync the write-ahead log is not checkpointed into the file after every chunk
(`CHECKPOINT_THRESHOLD`); every commit is still durable in the log, and closing the file at the
end of the sync checkpoints it. Rows need not keep the order of the Arrow table
(`preserve_insertion_order`), which lets DuckDB insert in parallel.

The file is attached with row groups of `ROW_GROUP_SIZE` rows (a twelfth of DuckDB's default),
and a load's whole row groups are compressed and written to the file at its commit
(`enable_optimistic_write`); only what is left over goes to the write-ahead log, for the
checkpoint to write. A sync makes its loads (from a row group on) whole multiples of it
(`load_unit`), so most rows are compressed once, by the load, while the sync builds the next
chunk, and are never copied into the write-ahead log; the checkpoint that closes the file
writes the rest (the first, smaller loads and the last). A file some 7 % larger than with
row groups of 30,720 rows written at the checkpoint.

Loads run on one DuckDB thread (`LOAD_THREADS`): a sync builds the next chunk while one loads,
so the other cores are busy already, and an insert from Arrow spread over several threads
costs more CPU time for the same rows (the threads hand its parts over). The checkpoint that
closes the file runs on all of them (the thread count is reset before `release` closes it):
nothing else runs then, and it compresses each row group as a task of its own.

JSON columns go in typed as JSON (Arrow's JSON extension type over the same buffers), which
DuckDB takes as they are: as text it would parse each value again. Their values are JSON a
sync has decoded already (each event's stored state, entries' details as decoded or written
again by msgspec); the text is kept byte for byte either way.

The watermark's row is updated in place once it exists (an upsert's conflict check cost a
load more than the update)."""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from domain.warehouse import TABLES, Column, ColumnType, Table
from infra.warehouses.sql import (
    WATERMARK,
    WATERMARK_COLUMNS,
    create_table_sql,
    literal,
    logical_types,
    quote,
    watermark_key,
)

log = logging.getLogger(__name__)
CHECKPOINT_THRESHOLD = "1GB"  # of write-ahead log before DuckDB checkpoints on its own
ROW_GROUP_SIZE = 10_240  # rows; a multiple of DuckDB's vector (2,048 rows)
LOAD_THREADS = 1  # DuckDB's threads while the file is open; its default (the cores) to close it
_CATALOG = "acgs_warehouse"  # the file's name in the connection
_JSON = pa.json_(pa.string())
_JSON_COLUMNS = {t.name: {c.name for c in t.columns if c.type is ColumnType.JSON} for t in TABLES}
TYPES = {
    ColumnType.STRING: "VARCHAR",
    ColumnType.INT: "BIGINT",
    ColumnType.TIMESTAMP: "TIMESTAMP WITH TIME ZONE",
    ColumnType.JSON: "JSON",
    ColumnType.BOOL: "BOOLEAN",
}


class DuckDbWarehouse:
    load_unit = ROW_GROUP_SIZE  # a load's rows: best whole row groups (see the module docstring)

    def __init__(self, config: Mapping[str, Any], default_path: Path) -> None:
        path = Path(str(config.get("database_path") or default_path))
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.prefix = str(config.get("table_prefix", ""))
        self.schema = str(config.get("schema") or "main")
        self._con: duckdb.DuckDBPyConnection | None = None
        with self._open() as con:
            con.execute(f"CREATE SCHEMA IF NOT EXISTS {quote(self.schema)}")
            con.execute(f"CREATE TABLE IF NOT EXISTS {self._name(WATERMARK)} {WATERMARK_COLUMNS}")
            self._drop_keys(con)
        self.release()

    def _drop_keys(self, con: duckdb.DuckDBPyConnection) -> None:
        """Rebuild without its primary key each of our tables an older release made keyed on
        `event_id` (DuckDB cannot drop a key): a copy of the table, made in one transaction."""
        names = [self.prefix + table.name for table in TABLES]
        keyed = con.execute(
            "SELECT table_name FROM duckdb_constraints() WHERE schema_name = ? "
            "AND constraint_type = 'PRIMARY KEY' AND list_contains(?, table_name) "
            "ORDER BY table_name",
            [self.schema, names],
        ).fetchall()
        for (name,) in keyed:
            found = con.execute(
                "SELECT column_name, data_type, is_nullable FROM information_schema.columns "
                "WHERE table_schema = ? AND table_name = ? ORDER BY ordinal_position",
                [self.schema, name],
            ).fetchall()
            columns = ", ".join(
                f"{quote(c)} {kind}{' NOT NULL' if nullable == 'NO' else ''}"
                for c, kind, nullable in found
            )
            copy = f"{name}_acgs_unkeyed"
            con.begin()
            try:
                con.execute(f"CREATE TABLE {self._name(copy)} ({columns})")
                con.execute(f"INSERT INTO {self._name(copy)} SELECT * FROM {self._name(name)}")  # noqa: S608 - identifiers escaped by quote()  # nosec B608
                con.execute(f"DROP TABLE {self._name(name)}")
                con.execute(f"ALTER TABLE {self._name(copy)} RENAME TO {quote(name)}")
            except BaseException:
                con.rollback()
                raise
            con.commit()
            log.info("warehouse %s: table %s rebuilt without its primary key", self.path, name)

    @contextmanager
    def _open(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """The file's connection, opened on first use and kept until `release`."""
        if self._con is None:
            # the file's spill directory, as when it is opened on its own
            con = duckdb.connect(config={"temp_directory": f"{self.path}.tmp"})
            try:
                con.execute(
                    f"ATTACH {literal(str(self.path))} AS {_CATALOG} "
                    f"(ROW_GROUP_SIZE {ROW_GROUP_SIZE})"
                )
                con.execute(f"USE {_CATALOG}")
                con.execute("DETACH memory")  # no other catalog a name could mean
                con.execute(f"SET checkpoint_threshold = '{CHECKPOINT_THRESHOLD}'")
                con.execute("SET preserve_insertion_order = false")
                con.execute("SET enable_optimistic_write = true")
                con.execute(f"SET threads = {LOAD_THREADS}")
            except BaseException:
                con.close()
                raise
            self._con = con
        yield self._con

    def release(self) -> None:
        """Close the file, checkpointing it on all cores."""
        if self._con is not None:
            try:
                self._con.execute("RESET threads")
            finally:
                self._con.close()
                self._con = None

    def _name(self, table: str) -> str:
        return f"{quote(self.schema)}.{quote(table)}"

    def columns(self, table: str) -> dict[str, str] | None:
        with self._open() as con:
            rows = con.execute(
                "SELECT column_name, data_type FROM information_schema.columns "
                "WHERE table_schema = ? AND table_name = ? ORDER BY ordinal_position",
                [self.schema, table],
            ).fetchall()
        return logical_types(dict(rows), TYPES) if rows else None

    def create_table(self, table: Table) -> None:
        with self._open() as con:
            con.execute(
                create_table_sql(self._name(self.prefix + table.name), table, TYPES, keyed=False)
            )

    def add_column(self, table: Table, column: Column) -> None:
        with self._open() as con:
            con.execute(
                f"ALTER TABLE {self._name(self.prefix + table.name)} "
                f"ADD COLUMN {quote(column.name)} {TYPES[column.type]}"
            )

    def watermark(self) -> int:
        with self._open() as con:
            return self._watermark(con)

    def _watermark(self, con: duckdb.DuckDBPyConnection) -> int:
        found = self._watermark_row(con)
        return 0 if found is None else found

    def _watermark_row(self, con: duckdb.DuckDBPyConnection) -> int | None:
        """The watermark, None while it has no row."""
        rows = con.execute(
            f"SELECT position FROM {self._name(WATERMARK)} WHERE name = ?",  # noqa: S608 - identifiers escaped by quote(); values bound  # nosec B608
            [watermark_key(self.prefix)],
        ).fetchall()
        return int(rows[0][0]) if rows else None

    def load(self, tables: Mapping[str, pa.Table], position: int) -> None:
        with self._open() as con:
            self._load(con, tables, position)

    def _load(
        self, con: duckdb.DuckDBPyConnection, tables: Mapping[str, pa.Table], position: int
    ) -> None:
        con.begin()
        try:
            found = self._watermark_row(con)
            loaded = 0 if found is None else found  # rows up to it are in: only later ones go in
            for name, data in tables.items():
                if data.num_rows:
                    view = f"_acgs_chunk_{name}"
                    con.register(view, _json_typed(data, _JSON_COLUMNS.get(name, set())))
                    try:
                        con.execute(
                            f"INSERT INTO {self._name(self.prefix + name)} BY NAME "  # noqa: S608 - identifiers escaped by quote(); values bound  # nosec B608
                            f"SELECT * FROM {quote(view)} WHERE position > ?",
                            [loaded],
                        )
                    finally:
                        con.unregister(view)
            key, moved = watermark_key(self.prefix), max(loaded, position)
            if found is None:
                con.execute(
                    f"INSERT INTO {self._name(WATERMARK)} VALUES (?, ?, now())",  # noqa: S608 - identifiers escaped by quote(); values bound  # nosec B608
                    [key, moved],
                )
            else:
                con.execute(
                    f"UPDATE {self._name(WATERMARK)} SET position = ?, updated_at = now() "  # noqa: S608 - identifiers escaped by quote(); values bound  # nosec B608
                    "WHERE name = ?",
                    [moved, key],
                )
        except BaseException:
            con.rollback()
            raise
        con.commit()

    def close(self) -> None:
        self.release()


def _json_typed(data: pa.Table, names: set[str]) -> pa.Table:
    """`data` with its text columns `names` typed as JSON (the same buffers)."""
    fields = [
        pa.field(f.name, _JSON, f.nullable) if f.name in names and f.type == pa.string() else f
        for f in data.schema
    ]
    return data.cast(pa.schema(fields))
