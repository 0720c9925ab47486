"""Warehouse loads for real: DuckDB (a file) and PostgreSQL (a second database of the test
cluster standing for a PostgreSQL-protocol warehouse). Every event of the log reaches both
tables once; a second sync adds only new events; a load that fails before its commit (a
trigger on the watermark; a process killed with SIGKILL) resumes with nothing lost or twice;
a new nullable column is added and any other difference refused, naming the column."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from uuid import UUID

import duckdb
import psycopg
import pyarrow as pa
import pytest
from psycopg.conninfo import conninfo_to_dict

from api.bootstrap import System
from api.settings import Settings
from api.warehouses import warehouse_commands
from commands.integrations import CreateIntegration
from commands.tenants import CreateTenant
from domain.errors import ValidationFailed
from domain.tenancy import SYSTEM_TENANT_ID
from domain.warehouse import AUDIT_LOG, GOVERNANCE_EVENTS, TABLES, SchemaRefused, without
from infra.postgres.follower import LogFollower
from infra.postgres.sink_store import SinkStore
from infra.warehouses import open_warehouse
from infra.warehouses.duckdb import TYPES as DUCK_TYPES
from infra.warehouses.duckdb import DuckDbWarehouse
from infra.warehouses.postgres import PostgresWarehouse
from infra.warehouses.sql import create_table_sql, quote
from projections.sinks.records import RecordMaker
from projections.sinks.warehouse import Warehouse, WarehouseLoader
from projections.sinks.warehouse_columns import ColumnMaker, LogColumns
from tests.integration.kafka.support import PLATFORM

pytestmark = [pytest.mark.postgres]
ACGS = str(Path(sys.executable).with_name("acgs"))


def _loader(system: System, warehouse: Warehouse, **kw: Any) -> WarehouseLoader:
    store = SinkStore(system.projector_conninfo)
    return WarehouseLoader(
        integration_id=kw.pop("integration_id", UUID(int=1)),
        owner=SYSTEM_TENANT_ID,
        scope=kw.pop("scope", None),
        log=LogFollower(system.projector_conninfo, "warehouse_test", track_position=False),
        warehouse=warehouse,
        records=RecordMaker(system.app.mapper, store.tenant_slug),
        closing=(store.close,),
        **kw,
    )


def _log(admin_conn: psycopg.Connection[Any], upto: int) -> list[str]:
    rows = admin_conn.execute(
        "SELECT originator_id, originator_version FROM governance_events "
        "WHERE notification_id <= %s ORDER BY notification_id",
        [upto],
    ).fetchall()
    from domain.events import event_id  # noqa: PLC0415

    return [str(event_id(a, v)) for a, v in rows]


def _sync_once(loader: WarehouseLoader) -> None:
    try:
        loader.sync()
    finally:
        loader.close()


def _head(system: System) -> int:
    log = LogFollower(system.projector_conninfo, "x", track_position=False)
    try:
        return log.head()
    finally:
        log.close()


def _tenant(system: System, unique: str, n: int = 0) -> UUID:
    made = system.tenants.create(
        PLATFORM, CreateTenant(f"WH {unique} {n}", f"wh-{unique}-{n}", "a@wh.example.com")
    )
    return made.id


@pytest.fixture
def pg_warehouse(pg_admin_url: str, unique: str) -> Iterator[dict[str, Any]]:
    """A database of its own in the test cluster, as a warehouse configuration."""
    name = f"wh_{unique}"
    with psycopg.connect(pg_admin_url, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    parts = conninfo_to_dict(pg_admin_url)
    yield {
        "provider": "postgres",
        "host": parts.get("host", "127.0.0.1"),
        "port": int(parts.get("port", 5432)),
        "database": name,
        "user": parts.get("user"),
        "password": parts.get("password"),
        "schema": "analytics",
    }
    with psycopg.connect(pg_admin_url, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE {name} WITH (FORCE)")


def _pg(config: dict[str, Any]) -> psycopg.Connection[Any]:
    return psycopg.connect(
        host=config["host"],
        port=config["port"],
        dbname=config["database"],
        user=config["user"],
        password=config["password"],
        autocommit=True,
    )


def test_duckdb_holds_every_event_once_and_a_second_sync_adds_only_new_ones(
    system: System, admin_conn: psycopg.Connection[Any], tmp_path: Path, unique: str
) -> None:
    _tenant(system, unique)
    path = tmp_path / "w.duckdb"
    loader = _loader(system, DuckDbWarehouse({}, path), chunk=97)
    first = loader.sync()
    assert first.watermark > 0
    assert first.rows_loaded == first.events_read == len(_log(admin_conn, first.watermark))
    _tenant(system, unique, 1)
    second = loader.sync()
    loader.close()
    wanted = _log(admin_conn, second.watermark)
    assert second.rows_loaded == len(wanted) - first.rows_loaded > 0
    with duckdb.connect(str(path), read_only=True) as db:
        for table in ("governance_events", "audit_log"):
            ids = [
                r[0]
                for r in db.execute(f"SELECT event_id FROM {table} ORDER BY position").fetchall()
            ]
            assert ids == wanted, table
        row = db.execute(
            "SELECT event_type, tenant_id, actor_id, constitutional_hash, json_extract_string("
            "payload, '$.meta.tenant_id') FROM governance_events WHERE event_type = "
            "'tenant.created' ORDER BY position DESC LIMIT 1"
        ).fetchone()
        assert row is not None
        assert row[0] == "tenant.created"
        assert row[1] == row[4]
        assert row[2] == "operator"
        assert len(row[3]) > 10
        slug = db.execute(
            "SELECT tenant_slug FROM audit_log ORDER BY position DESC LIMIT 1"
        ).fetchone()
        assert slug == (f"wh-{unique}-1",)
        assert db.execute("SELECT position FROM _acgs_watermark").fetchall() == [
            (second.watermark,)
        ]


@pytest.mark.parametrize("keyed", [False, True], ids=["as-made", "keyed-by-an-older-release"])
def test_duckdb_load_of_a_range_overlapping_the_watermark_adds_only_what_is_new(
    system: System, admin_conn: psycopg.Connection[Any], tmp_path: Path, unique: str, keyed: bool
) -> None:
    """DuckDB's tables have no primary key: the watermark, read in the load's own transaction,
    keeps every event from going in twice, even when a chunk is loaded again (a worker and an
    `acgs warehouse sync` one after the other, a load retried after its commit). Tables an
    older release made with the key take the same loads without a key violation, and lose the
    key (rows and NOT NULL columns kept) when the warehouse is opened again."""
    tenant = _tenant(system, unique)
    for n in range(8):
        system.tenants.update(PLATFORM, tenant, {"max_storage_gb": 100 + n})
    head = _head(system)
    log = LogFollower(system.projector_conninfo, "warehouse_test", track_position=False)
    store = SinkStore(system.projector_conninfo)
    maker = ColumnMaker(RecordMaker(system.app.mapper, store.tenant_slug))

    def columns(rows: list[Any], tables: Any) -> dict[str, pa.Table]:
        return maker(LogColumns.of_rows(rows), tables)

    rows = [r for r in log.read(0, 100_000) if int(r[0]) <= head]
    log.close()
    half = len(rows) // 2
    assert len(rows) >= half + 4  # the overlap below ends before the last event
    warehouse = DuckDbWarehouse({}, tmp_path / "o.duckdb")
    for table in TABLES:
        if keyed:
            with warehouse._open() as con:  # as an older release made them
                con.execute(create_table_sql(quote(table.name), table, DUCK_TYPES))
        else:
            warehouse.create_table(table)
    warehouse.load(columns(rows[:half], TABLES), int(rows[half - 1][0]))
    warehouse.load(columns(rows[: half + 3], TABLES), int(rows[half + 2][0]))  # overlaps
    warehouse.load(columns(rows[:half], TABLES), int(rows[half - 1][0]))  # all loaded already
    assert warehouse.watermark() == int(rows[half + 2][0])  # never moved back
    warehouse.load(columns(rows, TABLES), int(rows[-1][0]))
    warehouse.close()
    store.close()
    with duckdb.connect(str(tmp_path / "o.duckdb"), read_only=True) as db:
        for table in ("governance_events", "audit_log"):
            ids = db.execute(f"SELECT event_id FROM {table} ORDER BY position").fetchall()
            assert [r[0] for r in ids] == _log(admin_conn, int(rows[-1][0])), table
        keys = db.execute(
            "SELECT count(*) FROM duckdb_constraints() WHERE constraint_type = 'PRIMARY KEY' "
            "AND table_name = 'governance_events'"
        ).fetchall()
        assert keys == [(1 if keyed else 0,)]
    DuckDbWarehouse({}, tmp_path / "o.duckdb").close()  # opened again: an older key is dropped
    with duckdb.connect(str(tmp_path / "o.duckdb"), read_only=True) as db:
        for table in ("governance_events", "audit_log"):
            ids = db.execute(f"SELECT event_id FROM {table} ORDER BY position").fetchall()
            assert [r[0] for r in ids] == _log(admin_conn, int(rows[-1][0])), table
        constraints = db.execute(
            "SELECT table_name, constraint_type, count(*) FROM duckdb_constraints() "
            "WHERE table_name <> '_acgs_watermark' GROUP BY ALL ORDER BY ALL"
        ).fetchall()
        required = {t.name: sum(not c.nullable for c in t.columns) for t in TABLES}
        assert constraints == [(name, "NOT NULL", n) for name, n in sorted(required.items())]


def test_postgres_copy_load_resumes_after_a_failure_before_commit(
    system: System,
    admin_conn: psycopg.Connection[Any],
    pg_warehouse: dict[str, Any],
    unique: str,
) -> None:
    _tenant(system, unique)
    stop_at = _head(system) // 2
    warehouse = PostgresWarehouse(pg_warehouse)
    with _pg(pg_warehouse) as conn:
        conn.execute(
            "CREATE FUNCTION analytics.crash() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
            f"IF NEW.position > {stop_at} THEN RAISE EXCEPTION 'crash mid-load'; END IF; "
            "RETURN NEW; END $$"
        )
        for when in ("INSERT", "UPDATE"):
            conn.execute(
                f"CREATE TRIGGER crash_{when.lower()} BEFORE {when} ON analytics._acgs_watermark "
                "FOR EACH ROW EXECUTE FUNCTION analytics.crash()"
            )
        loader = _loader(system, warehouse, chunk=max(1, stop_at // 3))
        with pytest.raises(psycopg.errors.RaiseException, match="crash mid-load"):
            loader.sync()
        (watermark,) = conn.execute("SELECT position FROM analytics._acgs_watermark").fetchone()
        assert 0 < watermark <= stop_at
        loaded = conn.execute("SELECT event_id FROM analytics.governance_events ORDER BY position")
        assert [str(r[0]) for r in loaded.fetchall()] == _log(admin_conn, watermark)
        conn.execute("DROP TRIGGER crash_insert ON analytics._acgs_watermark")
        conn.execute("DROP TRIGGER crash_update ON analytics._acgs_watermark")
        done = loader.sync()
        loader.close()
        for table in ("governance_events", "audit_log"):
            ids = conn.execute(f"SELECT event_id FROM analytics.{table} ORDER BY position")
            assert [str(r[0]) for r in ids.fetchall()] == _log(admin_conn, done.watermark)
        kinds = conn.execute(
            "SELECT jsonb_typeof(payload), pg_typeof(occurred_at)::text "
            "FROM analytics.governance_events LIMIT 1"
        ).fetchone()
        assert kinds == ("object", "timestamp with time zone")


@pytest.mark.parametrize("kind", ["duckdb", "postgres"])
def test_schema_evolution_adds_a_new_nullable_column_and_refuses_any_other_change(
    system: System,
    tmp_path: Path,
    pg_warehouse: dict[str, Any],
    kind: str,
) -> None:
    def open_() -> Warehouse:
        if kind == "duckdb":
            return open_warehouse({"provider": "duckdb"}, tmp_path / "e.duckdb")
        return open_warehouse({**pg_warehouse, "provider": kind}, tmp_path / "unused.duckdb")

    old = (without(GOVERNANCE_EVENTS, "constitutional_hash"), AUDIT_LOG)
    loader = _loader(system, open_(), tables=old)
    first = loader.sync()
    loader.close()
    loader = _loader(system, open_())  # this release: one column more
    loader.sync()
    loader.close()
    table = "governance_events"
    check = open_()
    found = check.columns(table)
    assert found is not None
    assert found["constitutional_hash"] == "string"
    check.close()

    def run(statement: str) -> None:
        if kind == "duckdb":
            with duckdb.connect(str(tmp_path / "e.duckdb")) as db:
                db.execute(statement)
        else:
            with _pg(pg_warehouse) as conn:
                conn.execute(
                    statement.replace(" governance_events", " analytics.governance_events")
                )

    # older rows have NULL in the new column; newer ones have the hash
    assert first.watermark > 0
    run("ALTER TABLE governance_events ADD COLUMN extra_note VARCHAR")
    with pytest.raises(SchemaRefused, match="column extra_note") as refused:
        _sync_once(_loader(system, open_()))
    assert refused.value.details == {"table": table, "column": "extra_note"}
    run("ALTER TABLE governance_events DROP COLUMN extra_note")
    run("ALTER TABLE governance_events ALTER COLUMN aggregate_version TYPE VARCHAR")
    with pytest.raises(
        SchemaRefused,
        match=r"column aggregate_version is (character varying|string), expected int64",
    ):
        _sync_once(_loader(system, open_()))
    assert isinstance(refused.value, ValidationFailed)


def test_a_tenants_warehouse_integration_syncs_its_events_and_reports_its_status(
    system: System, admin_conn: psycopg.Connection[Any], tmp_path: Path, unique: str
) -> None:
    tenant = _tenant(system, unique)
    _tenant(system, unique, 1)  # another tenant's events stay out
    assert system.integrations is not None
    path = tmp_path / "t.duckdb"
    config = {"provider": "duckdb", "database_path": str(path), "schedule": "0 * * * *"}
    made = system.integrations.create(
        PLATFORM, tenant, CreateIntegration("data_warehouse", "Lake", config, enabled=False)
    )
    commands = warehouse_commands(system)
    outcome = commands.sync(PLATFORM, tenant, made.id)
    status = commands.status(PLATFORM.principal, tenant, made.id)
    commands.close()
    mine = admin_conn.execute(
        "SELECT count(*) FROM governance_events WHERE tenant_id = %s AND notification_id <= %s",
        [tenant, outcome.watermark],
    ).fetchone()
    assert mine is not None
    assert outcome.rows_loaded == mine[0] > 0
    assert (status.watermark, status.runs, status.last_error) == (outcome.watermark, 1, None)
    assert status.lag == status.head - status.watermark >= 0
    with duckdb.connect(str(path), read_only=True) as db:
        tenants = db.execute("SELECT DISTINCT tenant_id FROM governance_events").fetchall()
    assert tenants == [(str(tenant),)]


def test_a_sync_killed_mid_load_resumes_with_nothing_lost_or_twice(
    system: System,
    settings: Settings,
    pg_admin_url: str,
    admin_conn: psycopg.Connection[Any],
    tmp_path: Path,
    unique: str,
) -> None:
    """`acgs warehouse sync` in its own process, killed with SIGKILL during its loads (small
    chunks), then run again to the end."""
    assert system.integrations is not None
    tenant = _tenant(system, unique)
    for n in range(400):  # enough events for many loads of 5
        system.tenants.update(PLATFORM, tenant, {"max_storage_gb": 100 + n})
    path = tmp_path / "k.duckdb"
    config = {"provider": "duckdb", "database_path": str(path), "schedule": "continuous"}
    made = system.integrations.create(
        PLATFORM,
        SYSTEM_TENANT_ID,
        CreateIntegration("data_warehouse", f"Kill {unique}", config, enabled=False),
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("ACGS_")}
    env.update(
        ACGS_DATABASE_URL=pg_admin_url,
        ACGS_DATA_DIR=str(settings.data_dir),
        ACGS_LOG_LEVEL="WARNING",
        COLUMNS="200",
    )
    args = [ACGS, "warehouse", "sync", "--tenant", str(SYSTEM_TENANT_ID)]
    args += ["--integration", str(made.id)]
    victim = subprocess.Popen([*args, "--chunk", "1"], env=env, stderr=subprocess.DEVNULL)
    try:
        deadline = 60.0
        import time  # noqa: PLC0415

        start = time.monotonic()
        wal = path.with_name(path.name + ".wal")  # each commit goes into DuckDB's write-ahead log
        while time.monotonic() - start < deadline:  # (the writer's lock keeps readers out)
            if wal.exists() and wal.stat().st_size > 64_000:  # a few dozen loads committed
                break
            assert victim.poll() is None, "the sync ended before it was killed"
            time.sleep(0.01)
        else:
            pytest.fail("the sync never loaded into its warehouse")
        os.kill(victim.pid, signal.SIGKILL)
    finally:
        victim.wait(30)
    partial = _watermark(path)
    assert 0 < partial < _head(system)
    done = subprocess.run(
        [*args, "--chunk", "500"], env=env, capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    assert "loaded" in done.stdout
    final = _watermark(path)
    assert final > partial
    with duckdb.connect(str(path), read_only=True) as db:
        for table in ("governance_events", "audit_log"):
            ids = [
                r[0]
                for r in db.execute(f"SELECT event_id FROM {table} ORDER BY position").fetchall()
            ]
            assert ids == _log(admin_conn, final), table
    status = subprocess.run(
        [
            ACGS,
            "warehouse",
            "status",
            "--tenant",
            str(SYSTEM_TENANT_ID),
            "--integration",
            str(made.id),
            "--json",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert f'"watermark": {final}' in status.stdout


def _watermark(path: Path) -> int:
    try:
        with duckdb.connect(str(path), read_only=True) as db:
            row = db.execute("SELECT max(position) FROM _acgs_watermark").fetchone()
    except duckdb.Error:
        return 0  # still being created, or locked by the writer
    return int(row[0]) if row and row[0] is not None else 0
