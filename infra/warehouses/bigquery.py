"""BigQuery through `google-cloud-bigquery`'s insert API (`tabledata.insertAll`, the streaming
insert), each row with `insertId` = its event id, in requests of at most `BATCH` rows. BigQuery
has no transaction to share with the watermark: the watermark is a row appended to
`_acgs_watermark` after the chunk's rows (the largest one counts), so a load interrupted between
the two is sent again whole with the same insert ids, which BigQuery deduplicates on a
best-effort basis; queries that must be exact deduplicate on `event_id` (docs/warehouses.md).

`api_endpoint` points the client at another endpoint (a private one; the tests' local fake)."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import pyarrow as pa
from google.api_core.exceptions import NotFound
from google.cloud import bigquery
from google.oauth2 import service_account

from domain.warehouse import WATERMARK_TABLE, Column, ColumnType, Table
from infra.warehouses.sql import watermark_key

TYPES = {
    ColumnType.STRING: "STRING",
    ColumnType.INT: "INTEGER",
    ColumnType.TIMESTAMP: "TIMESTAMP",
    ColumnType.JSON: "JSON",
    ColumnType.BOOL: "BOOLEAN",
}
_BACK = {sql: kind.value for kind, sql in TYPES.items()} | {"INT64": "int64", "BOOL": "bool"}
BATCH = 500  # rows per insertAll request (BigQuery's recommendation)
SCOPES = ("https://www.googleapis.com/auth/bigquery",)


def _field(column: Column, *, required: bool) -> bigquery.SchemaField:
    mode = "REQUIRED" if required and not column.nullable else "NULLABLE"
    return bigquery.SchemaField(column.name, TYPES[column.type], mode=mode)


def _json_value(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat()
    return value


class BigQueryWarehouse:
    load_unit = 1  # rows a load is best a multiple of: any count

    def __init__(self, config: Mapping[str, Any]) -> None:
        self.prefix = str(config.get("table_prefix", ""))
        info = json.loads(str(config["credentials_json"]))
        credentials = service_account.Credentials.from_service_account_info(  # type: ignore[no-untyped-call]
            info, scopes=SCOPES
        )
        options = {"api_endpoint": config["api_endpoint"]} if config.get("api_endpoint") else None
        self.project = str(config["project"])
        self.dataset = str(config["dataset"])
        self._client = bigquery.Client(
            project=self.project, credentials=credentials, client_options=options
        )
        self._timeout = float(config.get("timeout_seconds", 10))
        self._client.create_dataset(
            f"{self.project}.{self.dataset}", exists_ok=True, timeout=self._timeout
        )
        watermark = bigquery.Table(
            self._id(WATERMARK_TABLE),
            schema=[
                bigquery.SchemaField("name", "STRING", mode="REQUIRED"),
                bigquery.SchemaField("position", "INTEGER", mode="REQUIRED"),
                bigquery.SchemaField("updated_at", "TIMESTAMP", mode="REQUIRED"),
            ],
        )
        self._client.create_table(watermark, exists_ok=True, timeout=self._timeout)

    def _id(self, table: str) -> str:
        return f"{self.project}.{self.dataset}.{table}"

    def columns(self, table: str) -> dict[str, str] | None:
        try:
            found = self._client.get_table(self._id(table), timeout=self._timeout)
        except NotFound:
            return None
        return {f.name: _BACK.get(f.field_type, f.field_type.lower()) for f in found.schema}

    def create_table(self, table: Table) -> None:
        schema = [_field(c, required=True) for c in table.columns]
        self._client.create_table(
            bigquery.Table(self._id(self.prefix + table.name), schema=schema),
            timeout=self._timeout,
        )

    def add_column(self, table: Table, column: Column) -> None:
        found = self._client.get_table(self._id(self.prefix + table.name), timeout=self._timeout)
        found.schema = [*found.schema, _field(column, required=False)]
        self._client.update_table(found, ["schema"], timeout=self._timeout)

    def watermark(self) -> int:
        key = watermark_key(self.prefix)
        rows = self._client.list_rows(self._id(WATERMARK_TABLE), timeout=self._timeout)
        positions = [int(r["position"]) for r in rows if r["name"] == key]
        return max(positions, default=0)

    def load(self, tables: Mapping[str, pa.Table], position: int) -> None:
        for name, data in tables.items():
            for batch in _batches(data.to_pylist(), BATCH):
                self._insert(
                    self.prefix + name,
                    [{k: _json_value(v) for k, v in row.items()} for row in batch],
                    [str(row["event_id"]) for row in batch],
                )
        now = datetime.now(UTC).isoformat()
        key = watermark_key(self.prefix)
        self._insert(
            WATERMARK_TABLE,
            [{"name": key, "position": position, "updated_at": now}],
            [f"{key}:{position}"],
        )

    def _insert(self, table: str, rows: list[dict[str, Any]], ids: list[str]) -> None:
        errors = self._client.insert_rows_json(
            self._id(table), rows, row_ids=ids, timeout=self._timeout
        )
        if errors:
            msg = f"BigQuery refused rows of {table}: {json.dumps(errors[:3])[:500]}"
            raise RuntimeError(msg)

    def release(self) -> None:
        """Nothing to let go of between syncs."""

    def close(self) -> None:
        self._client.close()  # type: ignore[no-untyped-call]


def _batches(rows: Sequence[dict[str, Any]], size: int) -> Iterator[Sequence[dict[str, Any]]]:
    for start in range(0, len(rows), size):
        yield rows[start : start + size]
