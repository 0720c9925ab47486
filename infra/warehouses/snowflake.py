"""Snowflake through `snowflake-connector-python`: each chunk is written as Parquet, `PUT` on an
internal stage, `COPY INTO` a staging table (by column name), and inserted from there into the
target table where its event id is not there yet. Loads are idempotent by event id rather than
one transaction with the watermark (the watermark row moves after the rows): a load interrupted
between the two is repeated whole and adds nothing twice."""

from __future__ import annotations

import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import snowflake.connector

from domain.warehouse import WATERMARK_TABLE, Column, ColumnType, Table
from infra.warehouses.sql import quote, watermark_key

TYPES = {
    ColumnType.STRING: "VARCHAR",
    ColumnType.INT: "NUMBER(38,0)",
    ColumnType.TIMESTAMP: "TIMESTAMP_TZ",
    ColumnType.JSON: "VARIANT",
    ColumnType.BOOL: "BOOLEAN",
}
_BACK = {  # as information_schema.columns names them
    "TEXT": "string",
    "VARCHAR": "string",
    "NUMBER": "int64",
    "TIMESTAMP_TZ": "timestamp",
    "VARIANT": "json",
    "BOOLEAN": "bool",
}
STAGE = "_acgs_stage"


def _stage_type(kind: pa.DataType) -> str:
    if pa.types.is_int64(kind):
        return "NUMBER(38,0)"
    if pa.types.is_timestamp(kind):
        return "TIMESTAMP_TZ"
    if pa.types.is_boolean(kind):
        return "BOOLEAN"
    return "VARCHAR"  # text, and JSON text (parsed on the way into the target)


class SnowflakeWarehouse:
    load_unit = 1  # rows a load is best a multiple of: any count

    def __init__(self, config: Mapping[str, Any]) -> None:
        self.prefix = str(config.get("table_prefix", ""))
        self.schema = str(config.get("schema") or "PUBLIC")
        self._json: dict[str, set[str]] = {}
        self._conn = snowflake.connector.connect(
            account=config["account"],
            user=config["user"],
            password=config["password"],
            database=config["database"],
            warehouse=config["warehouse"],
            login_timeout=int(config.get("timeout_seconds", 10)),
        )
        self._cur = self._conn.cursor()
        self._cur.execute(f"CREATE SCHEMA IF NOT EXISTS {quote(self.schema)}")
        self._cur.execute(f"USE SCHEMA {quote(self.schema)}")
        self._cur.execute(
            f"CREATE TABLE IF NOT EXISTS {quote(WATERMARK_TABLE)} (name VARCHAR NOT NULL, "
            "position NUMBER(38,0) NOT NULL, updated_at TIMESTAMP_TZ NOT NULL)"
        )

    def columns(self, table: str) -> dict[str, str] | None:
        self._cur.execute(
            "SELECT column_name, data_type FROM information_schema.columns "
            "WHERE table_schema = %s AND table_name = %s ORDER BY ordinal_position",
            (self.schema, table),
        )
        rows = self._cur.fetchall()
        if not rows:
            return None
        return {str(n): _BACK.get(str(t).upper(), str(t).lower()) for n, t in rows}

    def create_table(self, table: Table) -> None:
        columns = ", ".join(
            f"{quote(c.name)} {TYPES[c.type]}{'' if c.nullable else ' NOT NULL'}"
            for c in table.columns
        )
        self._cur.execute(
            f"CREATE TABLE {quote(self.prefix + table.name)} ({columns}, "
            f"PRIMARY KEY ({quote('event_id')}))"
        )

    def add_column(self, table: Table, column: Column) -> None:
        self._json.pop(self.prefix + table.name, None)
        self._cur.execute(
            f"ALTER TABLE {quote(self.prefix + table.name)} "
            f"ADD COLUMN {quote(column.name)} {TYPES[column.type]}"
        )

    def watermark(self) -> int:
        self._cur.execute(
            f"SELECT max(position) FROM {quote(WATERMARK_TABLE)} WHERE name = %s",  # noqa: S608 - identifiers escaped by quote(); values bound  # nosec B608
            (watermark_key(self.prefix),),
        )
        row = self._cur.fetchone()
        return int(row[0]) if row and row[0] is not None else 0

    def load(self, tables: Mapping[str, pa.Table], position: int) -> None:
        with tempfile.TemporaryDirectory(prefix="acgs-snowflake-") as folder:
            for name, data in tables.items():
                if data.num_rows:
                    self._load_table(Path(folder), self.prefix + name, data)
        key = watermark_key(self.prefix)
        self._cur.execute(
            f"UPDATE {quote(WATERMARK_TABLE)} SET position = %s, "  # noqa: S608 - identifiers escaped by quote(); values bound  # nosec B608
            "updated_at = current_timestamp() WHERE name = %s",
            (position, key),
        )
        if not self._cur.rowcount:
            self._cur.execute(
                f"INSERT INTO {quote(WATERMARK_TABLE)} VALUES (%s, %s, current_timestamp())",  # noqa: S608 - identifiers escaped by quote(); values bound  # nosec B608
                (key, position),
            )

    def _load_table(self, folder: Path, target: str, data: pa.Table) -> None:
        staging = f"{target}__acgs_staging"
        stage = f"{STAGE}_{target}"  # one per table: COPY takes every file on it
        file = folder / f"{target}.parquet"
        pq.write_table(data, file)
        columns = ", ".join(f"{quote(f.name)} {_stage_type(f.type)}" for f in data.schema)
        cur = self._cur
        cur.execute(f"CREATE OR REPLACE TABLE {quote(staging)} ({columns})")
        cur.execute(f"CREATE STAGE IF NOT EXISTS {quote(stage)}")
        cur.execute(f"PUT 'file://{file}' @{quote(stage)} AUTO_COMPRESS = FALSE OVERWRITE = TRUE")
        cur.execute(
            f"COPY INTO {quote(staging)} FROM @{quote(stage)} FILE_FORMAT = (TYPE = PARQUET) "
            "MATCH_BY_COLUMN_NAME = CASE_INSENSITIVE PURGE = TRUE"
        )
        json_columns = self._json_columns(target)
        names = ", ".join(quote(n) for n in data.column_names)
        values = ", ".join(
            f"PARSE_JSON(s.{quote(n)})" if n in json_columns else f"s.{quote(n)}"
            for n in data.column_names
        )
        cur.execute(
            f"INSERT INTO {quote(target)} ({names}) SELECT {values} FROM {quote(staging)} s "  # noqa: S608 - identifiers escaped by quote(); values bound  # nosec B608
            f"WHERE NOT EXISTS (SELECT 1 FROM {quote(target)} x "
            f"WHERE x.{quote('event_id')} = s.{quote('event_id')})"
        )

    def _json_columns(self, target: str) -> set[str]:
        if target not in self._json:
            found = self.columns(target) or {}
            self._json[target] = {n for n, kind in found.items() if kind == "json"}
        return self._json[target]

    def release(self) -> None:
        """Nothing to let go of between syncs."""

    def close(self) -> None:
        self._cur.close()
        self._conn.close()
