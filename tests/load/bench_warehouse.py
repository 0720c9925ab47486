"""Data-warehouse load benchmarks. Run: `python -m tests.load.bench_warehouse [--events N]`.

Everything runs on this machine: an embedded PostgreSQL (the event store, and a second database
of it standing for a PostgreSQL-protocol warehouse) and a DuckDB file. N audit events (default
50,000) are recorded first; a "row" below is one event (it becomes one row of
`governance_events` and one of `audit_log`).

0. The stages of a sync one at a time, as CPU time an event: reading the log (as rows, as the
   other followers read it, and packed column by column into Arrow, as a sync reads it),
   building the Arrow tables (through sink records, as syncs did, and in bulk from the packed
   read), DuckDB's load (all its threads) and the checkpoint when the file is closed.
1. DuckDB: a full sync from the log (reading the log, the audit record of every event, the
   Arrow tables, the load and its watermark, in chunks of `--chunk` events) and the load alone
   (the same Arrow tables, built before the clock starts, through the adapter with its
   watermark), each against the baseline of the same run: a bare `INSERT ... SELECT` of the
   same Arrow tables into tables of the same shape (no key, as the adapter makes them) in a
   fresh DuckDB file, in one transaction per chunk. Target: the full sync (from its start to
   the file closed, checkpoint included) >= 100,000 table rows/s, i.e. rows written to the
   warehouse's tables (each event is a row of each table: 50,000 events/s, printed beside it).
   Beside the sync's wall figure: the CPU time an event of this process (all its threads:
   reading, building, DuckDB) and of the PostgreSQL server (all its processes), and the sync's
   peak memory (the resident set's high-water mark above where it stood when the sync started).
2. PostgreSQL: the same two figures through the `COPY` adapter, against a bare psycopg `COPY` of
   the same CSV bytes (encoded before the clock starts) into tables of the same shape. Printed,
   with the ratio; no target.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import duckdb
import psycopg
import pyarrow as pa
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from api.bootstrap import System, build
from api.settings import Settings
from domain.audit import AuditEntry
from domain.events import Actor, EventMeta
from domain.maci import MaciRole
from domain.tenancy import SYSTEM_TENANT_ID
from domain.warehouse import TABLES
from infra.postgres.follower import LogFollower
from infra.postgres.sink_store import SinkStore
from infra.warehouses.duckdb import TYPES as DUCK_TYPES
from infra.warehouses.duckdb import DuckDbWarehouse
from infra.warehouses.postgres import TYPES as PG_TYPES
from infra.warehouses.postgres import PostgresWarehouse, csv_of
from infra.warehouses.sql import create_table_sql, quote
from projections.sinks.records import RecordMaker
from projections.sinks.warehouse import CHUNK, Warehouse, WarehouseLoader, chunk_of
from projections.sinks.warehouse_columns import ColumnMaker, LogColumns
from tests.load.targets import Targets
from tests.peers.postgres import throwaway_postgres
from tests.peers.scratch import scratch_dir

TARGETS = Targets("bench_warehouse")
Chunks = list[tuple[dict[str, pa.Table], int]]


def _record_events(system: System, count: int) -> None:
    hash_ = system.settings.constitutional_hash
    meta = EventMeta(SYSTEM_TENANT_ID, Actor("bench-user", (MaciRole.MONITOR,)), hash_)
    for start in range(0, count, 500):
        entries = [
            AuditEntry.record(
                entry_id=uuid.uuid4(),
                category="governance",
                action="policy_decision",
                result="success" if n % 3 else "denied",
                target_resource=f"policy/bench-{n % 50}",
                details={"decision_id": str(uuid.uuid4()), "rule": f"rule {n}"},
                meta=meta,
            )
            for n in range(start, min(count, start + 500))
        ]
        system.app.save_for(SYSTEM_TENANT_ID, *entries)


def _loader(system: System, warehouse: Warehouse, chunk: int = CHUNK) -> WarehouseLoader:
    store = SinkStore(system.projector_conninfo)
    return WarehouseLoader(
        integration_id=uuid.uuid4(),
        owner=SYSTEM_TENANT_ID,
        scope=None,
        log=LogFollower(system.projector_conninfo, "bench", track_position=False),
        warehouse=warehouse,
        records=RecordMaker(system.app.mapper, store.tenant_slug),
        closing=(store.close,),
        chunk=chunk,
    )


def _load() -> str:
    return f"(load {os.getloadavg()[0]:.1f})"


def _server_cpu(cluster: Path) -> float:
    """CPU seconds used so far by the PostgreSQL server (the postmaster and its children)."""
    postmaster = (cluster / "postmaster.pid").read_text().split()[0]
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            pid, rest = stat.read_text().split(" (", 1)
        except OSError:
            continue
        fields = rest.rsplit(")", 1)[1].split()
        if pid == postmaster or fields[1] == postmaster:  # the pid, then its parent's
            total += (int(fields[11]) + int(fields[12])) / ticks  # utime + stime
    return total


def _rss_kib(field: str) -> int:
    """This process's resident set (`VmRSS`) or its high-water mark (`VmHWM`), in KiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def _chunks(system: System, chunk: int) -> Chunks:
    """The Arrow tables of the whole log, chunk by chunk, as a sync builds them."""
    log = LogFollower(system.projector_conninfo, "bench", track_position=False)
    store = SinkStore(system.projector_conninfo)
    records = RecordMaker(system.app.mapper, store.tenant_slug)
    out: Chunks = []
    position = 0
    while rows := log.read(position, chunk):
        out.append((chunk_of(rows, records(rows)).arrow(TABLES), int(rows[-1][0])))
        position = int(rows[-1][0])
    log.close()
    store.close()
    return out


def building(system: System, chunk: int) -> None:
    """Reading the log (as rows, and packed into Arrow columns as a sync reads it), then
    building the tables of what was read (before the clock starts): through each event's sink
    record (`chunk_of`, as syncs did, from the rows) and in bulk (`ColumnMaker`, from the
    columns)."""
    log = LogFollower(system.projector_conninfo, "bench", track_position=False)
    reads: list[Any] = []
    position = 0
    started = time.process_time()
    while rows := log.read(position, chunk):
        reads.append(rows)
        position = int(rows[-1][0])
    read = time.process_time() - started
    head = position
    packed: list[LogColumns] = []
    position = 0
    started = time.process_time()
    while (part := log.read_packed(position, chunk, head)).count:
        packed.append(LogColumns.of_packed(part)[0])
        position = part.last
    read_packed = time.process_time() - started
    log.close()
    count = sum(len(rows) for rows in reads)
    print(f"== 0. The stages of a sync, {count} events (CPU time of this process)")
    print(
        f"  {'reading the log: rows (psycopg)':<34} {read / count * 1e6:>9.1f} us CPU an event "
        f"{_load()}"
    )
    print(
        f"  {'reading the log: packed (a sync)':<34} {read_packed / count * 1e6:>9.1f} us CPU an "
        f"event {_load()}"
    )
    store = SinkStore(system.projector_conninfo)
    try:
        records = RecordMaker(system.app.mapper, store.tenant_slug)
        records.slug(str(SYSTEM_TENANT_ID))  # the one slug lookup, before the clock starts
        started = time.process_time()
        for rows in reads:
            chunk_of(rows, records(rows)).arrow(TABLES)
        old = (time.process_time() - started) / count
        columns = ColumnMaker(RecordMaker(system.app.mapper, store.tenant_slug))
        started = time.process_time()
        for part in packed:
            columns(part, TABLES)
        new = (time.process_time() - started) / count
    finally:
        store.close()
    print(f"  {'building: through sink records':<34} {old * 1e6:>9.1f} us CPU an event {_load()}")
    print(
        f"  {'building: in bulk (ColumnMaker)':<34} {new * 1e6:>9.1f} us CPU an event "
        f"{_load()}   {old / new:.2f}x"
    )


def _rows(chunks: Chunks) -> int:
    return sum(t["governance_events"].num_rows for t, _ in chunks)


def _timed(run: Callable[[], Any]) -> float:
    started = time.perf_counter()
    run()
    return time.perf_counter() - started


def _line(name: str, events: int, seconds: float, base: float | None = None) -> float:
    """Events a second (and table rows: each event is a row of each of the two tables)."""
    rate = events / seconds
    ratio = f"   {rate / base:.2f}x the bare insert" if base else ""
    print(
        f"  {name:<34} {rate:>9,.0f} events/s = {rate * len(TABLES):>9,.0f} table rows/s "
        f"({events} in {seconds:.2f} s) {_load()}{ratio}"
    )
    return rate


def duckdb_part(system: System, work: Path, chunks: Chunks, chunk: int, cluster: Path) -> None:
    rows = _rows(chunks)
    print(f"== 1. DuckDB ({rows} events)")
    bare_db = duckdb.connect(str(work / "bare.duckdb"))
    for table in TABLES:
        bare_db.execute(create_table_sql(quote(table.name), table, DUCK_TYPES, keyed=False))
    bare_db.execute("SET preserve_insertion_order = false")

    def bare() -> None:
        for tables, _ in chunks:
            bare_db.begin()
            for name, data in tables.items():
                bare_db.register("v", data)
                bare_db.execute(f"INSERT INTO {quote(name)} BY NAME SELECT * FROM v")
                bare_db.unregister("v")
            bare_db.commit()

    base = _line("bare INSERT of the Arrow tables", rows, _timed(bare))
    bare_db.close()
    target = DuckDbWarehouse({}, work / "load.duckdb")
    for table in TABLES:
        target.create_table(table)

    def load() -> None:
        for tables, position in chunks:
            target.load(tables, position)

    cpu = time.process_time()
    _line("adapter load (with watermark)", rows, _timed(load), base)
    cpu = time.process_time() - cpu
    print(f"  {'adapter load: CPU (all threads)':<34} {cpu / rows * 1e6:>9.1f} us an event")
    cpu = time.process_time()
    seconds = _timed(target.close)
    cpu = time.process_time() - cpu
    print(
        f"  {'closing the file (checkpoint)':<34} {cpu / rows * 1e6:>9.1f} us CPU an event "
        f"({seconds:.2f} s) {_load()}"
    )
    loader = _loader(system, DuckDbWarehouse({}, work / "sync.duckdb"), chunk)
    Path("/proc/self/clear_refs").write_text("5")  # VmHWM from here on
    rss = _rss_kib("VmRSS")
    server = _server_cpu(cluster)
    cpu = time.process_time()
    outcome = loader.sync()
    cpu = time.process_time() - cpu
    server = _server_cpu(cluster) - server
    peak = _rss_kib("VmHWM") - rss
    loader.close()
    rate = _line("full sync from the log", outcome.rows_loaded, outcome.seconds, base)
    per_row = cpu / outcome.rows_loaded * 1e6
    print(f"  {'full sync: CPU (all threads)':<34} {per_row:>9.1f} us an event {_load()}")
    per_row = server / outcome.rows_loaded * 1e6
    print(f"  {'full sync: PostgreSQL server CPU':<34} {per_row:>9.1f} us an event {_load()}")
    print(f"  {'full sync: peak memory':<34} {peak / 1024:>9.1f} MiB above its start")
    rows_rate = rate * len(TABLES)
    verdict = TARGETS.check("DuckDB sync >= 100,000 table rows/s", rows_rate >= 100_000)
    print(
        f"  target: full sync >= 100,000 table rows/s: {rows_rate:,.0f} table rows/s "
        f"({rate:,.0f} events/s) {verdict}"
    )


def postgres_part(system: System, admin_url: str, chunks: Chunks) -> None:
    rows = _rows(chunks)
    print(f"== 2. PostgreSQL COPY ({rows} events)")
    parts = conninfo_to_dict(admin_url)
    for name in ("wh_bare", "wh_load", "wh_sync"):
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {name}")
    config = {
        "provider": "postgres",
        "host": parts.get("host"),
        "port": int(parts.get("port", 5432)),
        "user": parts.get("user"),
        "password": parts.get("password"),
    }
    csv = [({n: csv_of(t) for n, t in tables.items()}, p) for tables, p in chunks]
    with psycopg.connect(make_conninfo(admin_url, dbname="wh_bare"), autocommit=True) as conn:
        for table in TABLES:
            conn.execute(create_table_sql(quote(table.name), table, PG_TYPES))

        def bare() -> None:
            for tables, _ in csv:
                with conn.transaction(), conn.cursor() as cur:
                    for name, data in tables.items():
                        columns = ", ".join(
                            quote(c.name) for t in TABLES if t.name == name for c in t.columns
                        )
                        with cur.copy(
                            f"COPY {quote(name)} ({columns}) FROM STDIN (FORMAT csv)"
                        ) as copy:
                            copy.write(data)

        base = _line("bare COPY of the same CSV", rows, _timed(bare))
    target = PostgresWarehouse({**config, "database": "wh_load"})
    for table in TABLES:
        target.create_table(table)

    def load() -> None:
        for tables, position in chunks:
            target.load(tables, position)

    _line("adapter load (CSV from Arrow, COPY)", rows, _timed(load), base)
    target.close()
    loader = _loader(system, PostgresWarehouse({**config, "database": "wh_sync"}))
    outcome = loader.sync()
    loader.close()
    _line("full sync from the log", outcome.rows_loaded, outcome.seconds, base)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=50_000)
    parser.add_argument("--chunk", type=int, default=CHUNK, help="events per load of the sync")
    args = parser.parse_args()
    with (
        scratch_dir("acgs-bench-warehouse-") as work,
        throwaway_postgres(work / "pg") as (server, url),
    ):
        settings = Settings.from_env({"ACGS_DATABASE_URL": url, "ACGS_DATA_DIR": str(work)})
        system = build(settings, apply_migrations=False)
        try:
            _record_events(system, args.events)
            chunks = _chunks(system, args.chunk)
            print(f"(load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs)")
            building(system, args.chunk)
            duckdb_part(system, work, chunks, args.chunk, server.cluster_dir)
            postgres_part(system, url, chunks)
        finally:
            system.close()
    return TARGETS.exit_status()


if __name__ == "__main__":
    sys.exit(main())
