"""The Snowflake adapter against fakesnow (the connector's calls run on DuckDB): Parquet `PUT`
on a stage, `COPY INTO` a staging table, insert of the event ids not there yet, then the
watermark. A load interrupted after its rows and before its watermark is repeated whole and
adds nothing twice; a second sync adds only new events."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import fakesnow
import psycopg
import pyarrow as pa
import pytest
import snowflake.connector

from api.bootstrap import System
from infra.warehouses import open_warehouse
from infra.warehouses.snowflake import SnowflakeWarehouse
from tests.integration.warehouse.test_loads import _loader, _log, _tenant

pytestmark = [
    pytest.mark.postgres,
    # fakesnow's own use of DuckDB (not the adapter's)
    pytest.mark.filterwarnings("ignore:Arrow output on a DB-API result:UserWarning"),
]
CONFIG = {
    "provider": "snowflake",
    "account": "acme-xy12345",
    "user": "loader",
    "password": "wh-s3cret",
    "database": "ANALYTICS",
    "warehouse": "LOAD_WH",
    "schema": "ACGS",
}


@pytest.fixture
def fake_snowflake() -> Iterator[None]:
    with fakesnow.patch():
        yield


class CrashAfterRows(SnowflakeWarehouse):
    """Dies between a load's rows and its watermark, once, on the load past `after`."""

    def __init__(self, config: Mapping[str, Any], after: int) -> None:
        super().__init__(config)
        self.after = after

    def load(self, tables: Mapping[str, pa.Table], position: int) -> None:
        if position > self.after:
            self.after = 1 << 62
            for name, data in tables.items():
                self._load_table_for_test(name, data)
            raise RuntimeError("crash before the watermark")
        super().load(tables, position)

    def _load_table_for_test(self, name: str, data: pa.Table) -> None:
        import tempfile  # noqa: PLC0415
        from pathlib import Path  # noqa: PLC0415

        with tempfile.TemporaryDirectory() as folder:
            self._load_table(Path(folder), self.prefix + name, data)


def _ids(table: str) -> list[str]:
    conn = snowflake.connector.connect(**{k: v for k, v in CONFIG.items() if k != "provider"})
    rows = conn.cursor().execute(f'SELECT "event_id" FROM ACGS."{table}" ORDER BY "position"')
    return [r[0] for r in rows.fetchall()]


def test_snowflake_loads_are_idempotent_across_an_interrupted_load(
    fake_snowflake: None,
    system: System,
    admin_conn: psycopg.Connection[Any],
    unique: str,
) -> None:
    del fake_snowflake
    _tenant(system, unique)
    head = len(_log(admin_conn, 1 << 62))
    crashing = CrashAfterRows(CONFIG, after=head // 2)
    loader = _loader(system, crashing, chunk=max(1, head // 4))
    with pytest.raises(RuntimeError, match="crash before the watermark"):
        loader.sync()
    partial = crashing.watermark()
    assert 0 < partial <= head // 2
    assert len(_ids("governance_events")) > len(_log(admin_conn, partial))  # rows past it
    loader.close()
    loader = _loader(system, open_warehouse(CONFIG, Path("unused.duckdb")))
    done = loader.sync()
    for table in ("governance_events", "audit_log"):
        assert _ids(table) == _log(admin_conn, done.watermark), table
    _tenant(system, unique, 1)
    again = loader.sync()
    loader.close()
    assert again.rows_loaded == len(_log(admin_conn, again.watermark)) - len(
        _log(admin_conn, done.watermark)
    )
    assert _ids("governance_events") == _log(admin_conn, again.watermark)
    conn = snowflake.connector.connect(**{k: v for k, v in CONFIG.items() if k != "provider"})
    row = (
        conn.cursor()
        .execute(
            'SELECT "payload":meta:tenant_id::varchar, "tenant_id" FROM ACGS."governance_events" '
            'ORDER BY "position" DESC LIMIT 1'
        )
        .fetchone()
    )
    assert row is not None
    assert row[0] == row[1]
