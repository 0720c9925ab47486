"""PostgreSQL-protocol warehouses (PostgreSQL itself; `redshift` names the same adapter): each
chunk goes in with psycopg `COPY ... FROM STDIN (FORMAT csv)`, the CSV written from the Arrow
table by pyarrow (no row-by-row insert), together with the watermark, in one transaction.

Amazon Redshift speaks this protocol but loads `COPY` only from S3: the `redshift` provider is
tested here against PostgreSQL only."""

from __future__ import annotations

import io
from collections.abc import Mapping
from typing import Any

import psycopg
import pyarrow as pa
import pyarrow.csv as pa_csv

from domain.warehouse import Column, ColumnType, Table
from infra.warehouses.sql import (
    WATERMARK,
    WATERMARK_COLUMNS,
    create_table_sql,
    logical_types,
    quote,
    watermark_key,
)

TYPES = {
    ColumnType.STRING: "TEXT",
    ColumnType.INT: "BIGINT",
    ColumnType.TIMESTAMP: "TIMESTAMP WITH TIME ZONE",
    ColumnType.JSON: "JSONB",
    ColumnType.BOOL: "BOOLEAN",
}
DEFAULT_PORT = {"postgres": 5432, "redshift": 5439}
_CSV = pa_csv.WriteOptions(include_header=False)


def csv_of(data: pa.Table) -> bytes:
    """The Arrow table as CSV for `COPY (FORMAT csv)`: NULL unquoted and empty, text quoted."""
    out = io.BytesIO()
    pa_csv.write_csv(data, out, _CSV)
    return out.getvalue()


class PostgresWarehouse:
    load_unit = 1  # rows a load is best a multiple of: any count

    def __init__(self, config: Mapping[str, Any]) -> None:
        self.prefix = str(config.get("table_prefix", ""))
        self.schema = str(config.get("schema") or "public")
        provider = str(config.get("provider", "postgres"))
        self._conn = psycopg.connect(
            host=config["host"],
            port=int(config.get("port") or DEFAULT_PORT.get(provider, 5432)),
            dbname=config["database"],
            user=config["user"],
            password=config.get("password"),
            connect_timeout=int(config.get("timeout_seconds", 10)),
            autocommit=True,
        )
        self._conn.execute(f"CREATE SCHEMA IF NOT EXISTS {quote(self.schema)}")
        self._conn.execute(
            f"CREATE TABLE IF NOT EXISTS {self._name(WATERMARK)} {WATERMARK_COLUMNS}"
        )

    def _name(self, table: str) -> str:
        return f"{quote(self.schema)}.{quote(table)}"

    def columns(self, table: str) -> dict[str, str] | None:
        rows = self._conn.execute(
            "SELECT column_name, data_type FROM information_schema.columns "
            "WHERE table_schema = %s AND table_name = %s ORDER BY ordinal_position",
            [self.schema, table],
        ).fetchall()
        return logical_types({str(n): str(t) for n, t in rows}, TYPES) if rows else None

    def create_table(self, table: Table) -> None:
        self._conn.execute(create_table_sql(self._name(self.prefix + table.name), table, TYPES))

    def add_column(self, table: Table, column: Column) -> None:
        self._conn.execute(
            f"ALTER TABLE {self._name(self.prefix + table.name)} "
            f"ADD COLUMN {quote(column.name)} {TYPES[column.type]}"
        )

    def watermark(self) -> int:
        row = self._conn.execute(
            f"SELECT position FROM {self._name(WATERMARK)} WHERE name = %s",  # noqa: S608 - identifiers escaped by quote(); values bound  # nosec B608
            [watermark_key(self.prefix)],
        ).fetchone()
        return int(row[0]) if row else 0

    def load(self, tables: Mapping[str, pa.Table], position: int) -> None:
        with self._conn.transaction(), self._conn.cursor() as cur:
            for name, data in tables.items():
                if not data.num_rows:
                    continue
                columns = ", ".join(quote(c) for c in data.column_names)
                sql = f"COPY {self._name(self.prefix + name)} ({columns}) FROM STDIN (FORMAT csv)"
                with cur.copy(sql) as copy:
                    copy.write(csv_of(data))
            cur.execute(
                f"INSERT INTO {self._name(WATERMARK)} VALUES (%s, %s, now()) "  # noqa: S608 - identifiers escaped by quote(); values bound  # nosec B608
                "ON CONFLICT (name) DO UPDATE SET position = excluded.position, "
                "updated_at = excluded.updated_at",
                [watermark_key(self.prefix), position],
            )

    def release(self) -> None:
        """Nothing to let go of between syncs."""

    def close(self) -> None:
        self._conn.close()
