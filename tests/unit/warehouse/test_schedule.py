"""A warehouse worker on a cron schedule waits until the schedule's next time (UTC), then
syncs; a stop while it waits ends it without a sync."""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from typing import Any
from uuid import UUID

import pyarrow as pa
import pytest

from domain.warehouse import Column, Table
from projections.sinks.warehouse import WarehouseLoader


class EmptyLog:
    def read_packed(self, after: int, limit: int, upto: int, scope: UUID | None = None) -> Any:
        raise AssertionError("an empty log is not read")

    def head(self) -> int:
        return 0

    def follow(
        self, stop: threading.Event, catch_up: Callable[[], int], *, poll_seconds: float = 1.0
    ) -> None:
        raise AssertionError("a cron schedule does not follow the log")

    def close(self) -> None:
        pass


class NoTables:
    prefix = ""
    load_unit = 1

    def columns(self, table: str) -> dict[str, str] | None:
        return {}

    def create_table(self, table: Table) -> None:
        pass

    def add_column(self, table: Table, column: Column) -> None:
        pass

    def watermark(self) -> int:
        return 0

    def load(self, tables: Mapping[str, pa.Table], position: int) -> None:
        pass

    def release(self) -> None:
        pass

    def close(self) -> None:
        pass


class Ledger:
    def __init__(self, stop: threading.Event) -> None:
        self.runs: list[int] = []
        self.stop = stop

    def finished(self, owner: UUID, integration_id: UUID, **kw: Any) -> None:
        self.runs.append(int(kw["watermark"]))
        self.stop.set()

    def close(self) -> None:
        pass


def _loader(schedule: str, ledger: Ledger, clock: Callable[[], float]) -> WarehouseLoader:
    return WarehouseLoader(
        integration_id=UUID(int=7),
        owner=UUID(int=0),
        scope=None,
        log=EmptyLog(),
        warehouse=NoTables(),
        records=lambda _rows: [],
        ledger=ledger,
        schedule=schedule,
        tables=(),
        clock=clock,
    )


class Waits(threading.Event):
    """A stop event that records how long it was asked to wait, and does not wait."""

    def __init__(self, *, stop_while_waiting: bool = False) -> None:
        super().__init__()
        self.asked: list[float | None] = []
        self.stop_while_waiting = stop_while_waiting

    def wait(self, timeout: float | None = None) -> bool:
        self.asked.append(timeout)
        if self.stop_while_waiting:
            self.set()
        return self.is_set()


T0 = 1_796_227_199.7  # 0.3 s before a whole minute


def test_a_cron_schedule_waits_for_its_next_time_then_syncs() -> None:
    stop = Waits()
    ledger = Ledger(stop)
    _loader("* * * * *", ledger, lambda: T0).run(stop)
    assert stop.asked == [pytest.approx(0.3)]
    assert len(ledger.runs) == 1


def test_a_daily_schedule_waits_until_its_hour() -> None:
    stop = Waits(stop_while_waiting=True)  # no sync
    ledger = Ledger(stop)
    _loader("0 3 * * *", ledger, lambda: T0).run(stop)
    due = (T0 // 86400) * 86400 + 3 * 3600
    due += 86400 if due <= T0 else 0
    assert stop.asked == [pytest.approx(due - T0)]
    assert ledger.runs == []
