"""Incremental loads of the event log into a data warehouse (`domain.warehouse` holds the
tables).

A sync reads the warehouse's watermark (the log position of the last event it holds), reads the
log after it in chunks, keeps the events its scope allows (a tenant's warehouse: that tenant's;
the system tenant's: every tenant's), turns each chunk into one Arrow table per warehouse table
(in bulk, `projections.sinks.warehouse_columns`), and hands them to the warehouse with the
chunk's last position as the new watermark (one load at a time, in log order, in a thread of
its own while the next chunk is read and built). The warehouse commits rows and watermark in
one transaction where it can (DuckDB, PostgreSQL); where it cannot, its load is idempotent by
event id (see `infra/warehouses`). So a sync that dies mid-load starts again from the last
committed watermark: nothing lost, nothing twice.

The log is read through the one follower (`infra.postgres.follower.LogFollower`, without a
position row of its own: the watermark lives in the warehouse), packed column by column
(`read_packed`, up to the head of the log when the sync starts, with whether each event is in
scope): the chunk arrives as a few values made into Arrow columns (`LogColumns`), not as a
Python tuple, two UUIDs and a datetime an event, so the reading thread holds the interpreter
lock little while the building runs. A `WarehouseWorker` runs one
integration's syncs under the supervisor, continuously (following the log) or on a cron
schedule.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol
from uuid import UUID

import msgspec
import pyarrow as pa

from domain.sinks import SinkRecord
from domain.warehouse import (
    AUDIT_LOG,
    CONTINUOUS,
    GOVERNANCE_EVENTS,
    TABLES,
    Column,
    Table,
    evolution,
)
from projections.sinks.records import RecordMaker
from projections.sinks.warehouse_columns import ColumnMaker, LogColumns, Packed, arrow_schema

log = logging.getLogger(__name__)
Row = Sequence[Any]  # a row of the notification log (see infra.postgres.follower.LogRow)
CHUNK = 20_480  # events per load (the next chunk is read and built while one loads; the first
# three loads are an eighth, a quarter and a half of it); two of DuckDB's row groups
_encode = msgspec.json.Encoder(enc_hook=str).encode


class Warehouse(Protocol):
    """One warehouse connection (an adapter in `infra/warehouses`). Table names are the
    configured prefix plus the table's name."""

    prefix: str
    load_unit: int  # rows a load is best a whole multiple of, from one on (1: any count)

    def columns(self, table: str) -> dict[str, str] | None:
        """The table's columns and their logical types (ColumnType values); None if it does
        not exist."""
        ...

    def create_table(self, table: Table) -> None: ...

    def add_column(self, table: Table, column: Column) -> None:
        """Add `column`, nullable."""
        ...

    def watermark(self) -> int:
        """The position of the last event loaded (0 before the first load)."""
        ...

    def load(self, tables: Mapping[str, pa.Table], position: int) -> None:
        """Load one chunk (an Arrow table per table name, unprefixed) and move the watermark to
        `position`: in one transaction, or idempotently by event id."""
        ...

    def release(self) -> None:
        """Let go of what a sync holds (called at the end of every sync)."""
        ...

    def close(self) -> None: ...


class LogReader(Protocol):
    """The log, read by position (the one follower, without a position row)."""

    def read_packed(
        self, after: int, limit: int, upto: int, scope: UUID | None = None
    ) -> Packed: ...

    def head(self) -> int: ...

    def follow(
        self, stop: threading.Event, catch_up: Callable[[], int], *, poll_seconds: float = 1.0
    ) -> None: ...

    def close(self) -> None: ...


class RunLedger(Protocol):
    """Where each warehouse's last run is kept (for `status`; infra.postgres.warehouse_runs)."""

    def finished(
        self,
        owner: UUID,
        integration_id: UUID,
        *,
        watermark: int,
        rows: int,
        error: str | None,
    ) -> None: ...

    def close(self) -> None: ...


Progress = Callable[[int, int], None]  # (log positions passed so far, positions to pass)


def prepare(warehouse: Warehouse, tables: Sequence[Table] = TABLES) -> list[str]:
    """Create missing tables and add new nullable columns; returns what it did ("table.column"
    for each column added). Raises SchemaRefused for any other difference."""
    done: list[str] = []
    for table in tables:
        found = warehouse.columns(warehouse.prefix + table.name)
        if found is None:
            warehouse.create_table(table)
            done.append(warehouse.prefix + table.name)
            continue
        for column in evolution(table, found, prefix=warehouse.prefix):
            warehouse.add_column(table, column)
            done.append(f"{warehouse.prefix}{table.name}.{column.name}")
    if done:
        log.info("warehouse schema: %s", ", ".join(done))
    return done


@dataclass
class Chunk:
    """The columns of one load, by table."""

    columns: dict[str, dict[str, list[Any]]]
    events: int

    def arrow(self, tables: Sequence[Table]) -> dict[str, pa.Table]:
        out = {}
        for table in tables:
            cols = self.columns[table.name]
            out[table.name] = pa.Table.from_pydict(
                {c.name: cols.get(c.name, [None] * self.events) for c in table.columns},
                schema=arrow_schema(table),
            )
        return out


def chunk_of(rows: Sequence[Row], records: Sequence[SinkRecord]) -> Chunk:
    """The rows of both tables for `rows` (log rows) and their sink records (same order): the
    reference for `ColumnMaker`, which a sync uses (the same values, without the records)."""
    ev: dict[str, list[Any]] = {c: [] for c in GOVERNANCE_EVENTS.names}
    au: dict[str, list[Any]] = {c: [] for c in AUDIT_LOG.names}
    for row, record in zip(rows, records, strict=True):
        body = record.body
        at = row[6]
        ev["event_id"].append(record.event_id)
        ev["position"].append(record.position)
        ev["tenant_id"].append(record.tenant_id)
        ev["event_type"].append(body.get("source_event_type", record.event_type))
        ev["occurred_at"].append(at)
        ev["actor_id"].append(body.get("actor_id"))
        ev["actor_type"].append(body.get("actor_type"))
        ev["aggregate_id"].append(str(row[1]))
        ev["aggregate_version"].append(int(row[2]))
        ev["payload"].append(bytes(row[4]).decode())
        ev["constitutional_hash"].append(body.get("constitutional_hash"))
        au["event_id"].append(record.event_id)
        au["position"].append(record.position)
        au["tenant_id"].append(record.tenant_id)
        au["tenant_slug"].append(body.get("tenant_slug"))
        au["event_type"].append(record.event_type)
        au["event_category"].append(body.get("event_category"))
        au["action"].append(body.get("action"))
        au["result"].append(body.get("result"))
        au["actor_id"].append(body.get("actor_id"))
        au["actor_type"].append(body.get("actor_type"))
        au["target_resource"].append(body.get("target_resource"))
        au["severity"].append(body.get("severity"))
        au["alert"].append(record.alert)
        au["occurred_at"].append(at)
        au["constitutional_hash"].append(body.get("constitutional_hash"))
        details = body.get("details")
        au["details"].append(None if details is None else _encode(details).decode())
    return Chunk({GOVERNANCE_EVENTS.name: ev, AUDIT_LOG.name: au}, len(rows))


def _ramp(chunk: int) -> Iterator[int]:
    """Events a read: an eighth of `chunk`, then a quarter, a half, then `chunk` each time."""
    for part in (8, 4, 2):
        yield max(1, chunk // part)
    while True:
        yield chunk


def _tapered(size: int, left: int, chunk: int) -> int:
    """Events a read, near the end of the log: half of what is `left` (log positions up to
    the head), but no less than an eighth of `chunk`."""
    return min(size, max(chunk // 8, -(-left // 2)))


def _aligned(size: int, unit: int) -> int:
    """Events a read for a warehouse whose loads are best whole multiples of `unit` rows:
    `size` rounded down to one, or as it is below one unit."""
    return size if size < unit else size - size % unit


@dataclass(frozen=True)
class _Pending:
    load: Future[None]
    position: int
    rows: int
    wanted: int


@dataclass
class _Done:
    """What a sync has committed so far."""

    watermark: int = 0
    read: int = 0
    loaded: int = 0

    def settle(self, pending: _Pending) -> None:
        """Wait for a load (its failure propagates) and count it."""
        pending.load.result()
        self.watermark = pending.position
        self.read += pending.rows
        self.loaded += pending.wanted


@dataclass(frozen=True)
class SyncOutcome:
    watermark: int  # after the sync
    events_read: int  # log events passed (in scope or not)
    rows_loaded: int  # events loaded (rows per table)
    seconds: float


@dataclass
class WarehouseLoader:
    """Syncs one warehouse integration (see the module docstring)."""

    integration_id: UUID
    owner: UUID
    scope: UUID | None
    log: LogReader
    warehouse: Warehouse
    records: RecordMaker
    ledger: RunLedger | None = None
    schedule: str = CONTINUOUS
    tables: tuple[Table, ...] = TABLES
    chunk: int = CHUNK
    closing: tuple[Callable[[], None], ...] = ()  # more to release on close
    clock: Callable[[], float] = time.time  # for the cron schedule
    _prepared: bool = field(default=False, init=False)

    @property
    def name(self) -> str:
        return f"warehouse_{self.integration_id.hex}"

    def close(self) -> None:
        self.log.close()
        self.warehouse.close()
        if self.ledger is not None:
            self.ledger.close()
        for close in self.closing:
            close()

    def sync(
        self, stop: threading.Event | None = None, progress: Progress | None = None
    ) -> SyncOutcome:
        """Load everything after the watermark (up to the head of the log when it starts);
        records the run (and its error) in the ledger."""
        started = time.perf_counter()
        done = _Done()
        pending: _Pending | None = None
        pool = ThreadPoolExecutor(1, thread_name_prefix=f"{self.name}-load")
        reader = ThreadPoolExecutor(1, thread_name_prefix=f"{self.name}-read")
        try:
            if not self._prepared:
                prepare(self.warehouse, self.tables)
                self._prepared = True
            done.watermark = start = self.warehouse.watermark()
            head = self.log.head()
            columns = ColumnMaker(self.records)
            for position, read, scoped in self._chunks(done.watermark, head, stop, reader):
                wanted = read if scoped is None else read.filter(scoped)
                tables = columns(wanted, self.tables)
                if pending is not None:  # one load at a time, in log order
                    done.settle(pending)
                    pending = None
                    if progress is not None:
                        progress(done.watermark - start, head - start)
                load = pool.submit(self.warehouse.load, tables, position)
                pending = _Pending(load, position, len(read), len(wanted))
            if pending is not None:
                done.settle(pending)
                pending = None
                if progress is not None:
                    progress(done.watermark - start, head - start)
        except Exception as exc:
            if pending is not None:  # the load in flight counts if it committed
                with suppress(Exception):
                    done.settle(pending)
            self._finished(done.watermark, done.loaded, f"{type(exc).__name__}: {exc}"[:2000])
            self._prepared = False
            raise
        finally:
            reader.shutdown(wait=True)
            pool.shutdown(wait=True)
            self.warehouse.release()
        self._finished(done.watermark, done.loaded, None)
        return SyncOutcome(done.watermark, done.read, done.loaded, time.perf_counter() - started)

    def _chunks(
        self, after: int, head: int, stop: threading.Event | None, reader: ThreadPoolExecutor
    ) -> Iterator[tuple[int, LogColumns, pa.Array | None]]:
        """The log after `after` up to `head`, a chunk at a time (its last position, its
        columns, and which rows are in scope); the next chunk is read (in `reader`) while one
        is built, so the database's work overlaps the building. The first chunks are smaller
        (`_ramp`), so the warehouse's first load starts early rather than after a whole chunk
        is read and built: the loads, one after the other, are the longer stage. So are the
        last (`_tapered`): the load of the last chunk is not overlapped by anything. A chunk
        of at least the warehouse's `load_unit` is a whole multiple of it (`_aligned`: DuckDB
        writes a load's whole row groups at its commit, the rest at its checkpoint); as many
        rows as events in a sync of every tenant."""

        sizes = _ramp(self.chunk)

        def read(position: int, size: int) -> tuple[int, LogColumns, pa.Array | None]:
            packed = self.log.read_packed(position, size, head, self.scope)
            return (packed.last, *LogColumns.of_packed(packed))

        def more(position: int) -> Future[tuple[int, LogColumns, pa.Array | None]] | None:
            if position >= head or (stop is not None and stop.is_set()):
                return None
            size = _tapered(next(sizes), head - position, self.chunk)
            return reader.submit(read, position, _aligned(size, self.warehouse.load_unit))

        ahead = more(after)
        while ahead is not None:
            last, columns, scoped = ahead.result()
            if not len(columns):
                return
            ahead = more(last)
            yield last, columns, scoped

    def _finished(self, watermark: int, rows: int, error: str | None) -> None:
        if self.ledger is None:
            return
        try:
            self.ledger.finished(
                self.owner, self.integration_id, watermark=watermark, rows=rows, error=error
            )
        except Exception:  # the ledger is for status only; a load must not fail for it
            log.exception("warehouse %s: its run was not recorded", self.name)

    # --- the worker ---------------------------------------------------------------------------

    def run(self, stop: threading.Event, poll_seconds: float = 1.0) -> None:
        """Sync until `stop`: following the log (continuous), or at each time of the cron
        schedule. A failed sync propagates (the supervisor restarts the worker after its
        backoff); its error is in the ledger."""
        if self.schedule == CONTINUOUS:
            self.log.follow(stop, lambda: self.sync(stop).events_read, poll_seconds=poll_seconds)
            return
        from croniter import croniter  # noqa: PLC0415 - the warehouse extra

        times = croniter(self.schedule, datetime.fromtimestamp(self.clock(), UTC))
        while not stop.is_set():
            due: datetime = times.get_next(datetime)
            if stop.wait(max(0.0, due.timestamp() - self.clock())):
                return
            self.sync(stop)
