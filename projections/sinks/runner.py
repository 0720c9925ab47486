"""A sink runner: one follower of the event log per configured sink, in the "publish, then
advance once acknowledged" mode.

Each round reads the events after the sink's position, keeps those its scope allows (a tenant's
sink sees only that tenant's events; a platform sink, owned by the system tenant, sees all),
enriches them, cuts them into batches by count and bytes, and hands each batch to the sink. A
partial batch waits up to `max_wait` for more events, unless it holds an alert, which goes at
once. A refused batch (or the refused items of a batch) is tried again after an exponential
delay with jitter, never sooner than the receiver's Retry-After, through the sink's circuit
breaker; after `max_attempts` the records still refused become dead letters and the stream moves
on. The position moves past a round only once every record of it was acknowledged or
dead-lettered, so a runner killed mid-batch starts again from its last confirmed position:
records may arrive twice (the receiver deduplicates on `event_id`), never not at all.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol, TypeVar
from uuid import UUID

from domain.errors import DependencyUnavailable
from domain.sinks import (
    DeliveryFailed,
    Sink,
    SinkRecord,
    batches,
    retry_delay,
)

log = logging.getLogger(__name__)
T = TypeVar("T")
Row = Sequence[Any]  # a row of the notification log: (notification_id, ..., tenant_id, at)
_TENANT = 5  # the tenant id's column in a log row


class LogSource(Protocol):
    """Where a runner reads events: its own follower of the notification log (its tracked
    position), or, with streaming on, a Kafka consumer group of its own that hands out the same
    rows and commits its offsets on `advance` (infra.kafka.sink_source)."""

    name: str

    def position(self) -> int: ...

    def advance(self, position: int) -> None: ...

    def read(self, after: int, limit: int | None = None) -> Sequence[Row]: ...

    def follow(
        self,
        stop: threading.Event,
        catch_up: Callable[[], int],
        *,
        poll_seconds: float = 1.0,
    ) -> None: ...

    def close(self) -> None: ...


class DeadLetters(Protocol):
    """Where a sink's undeliverable records are kept, per sink and event (see domain.sinks)."""

    def add(
        self,
        owner: UUID,
        integration_id: UUID,
        failures: Sequence[tuple[SinkRecord, str]],
        attempts: int,
    ) -> None: ...

    def close(self) -> None: ...


Enrich = Callable[[Sequence[Row]], list[SinkRecord]]
Guard = Callable[[Callable[[], T]], T]  # the sink's circuit breaker around one attempt


class SinkStopped(Exception):
    """Stop was asked while a batch was waiting for a retry; its position has not moved."""


@dataclass
class SinkStats:
    """Counts since the process started (exported by /metrics)."""

    delivered: int = 0  # records acknowledged by the receiver
    failed: int = 0  # records refused by an attempt (each attempt counts)
    dead_lettered: int = 0
    retries: int = 0
    batches: int = 0
    events_read: int = 0
    position: int = 0
    last_delivery_latency: float = 0.0  # seconds from the newest event's time to its ack
    delivery_seconds: float = 0.0  # wall time the delivery thread spent on rounds (receiver's too)


SINK_STATS: dict[str, SinkStats] = {}
_STATS_LOCK = threading.Lock()


def stats_of(name: str) -> SinkStats:
    with _STATS_LOCK:
        return SINK_STATS.setdefault(name, SinkStats())


@dataclass(frozen=True)
class SinkSettings:
    """How a runner batches and retries (from the integration's configuration)."""

    max_count: int = 500
    max_bytes: int = 1_000_000
    max_wait: float = 0.2
    max_attempts: int = 8
    retry_initial: float = 0.5

    @classmethod
    def of(cls, config: dict[str, Any]) -> SinkSettings:
        return cls(
            max_count=int(config.get("batch_size", 500)),
            max_bytes=int(config.get("batch_max_bytes", 1_000_000)),
            max_wait=int(config.get("batch_max_wait_ms", 200)) / 1000,
            max_attempts=int(config.get("max_attempts", 8)),
            retry_initial=int(config.get("retry_initial_ms", 500)) / 1000,
        )


def _no_guard(attempt: Callable[[], T]) -> T:
    return attempt()


@dataclass
class SinkRunner:
    """Feeds one sink from the log (see the module docstring). `owner` is the tenant owning the
    sink; `scope` the tenant whose events it sees (None: every tenant's, a platform sink)."""

    integration_id: UUID
    owner: UUID
    scope: UUID | None
    source: LogSource
    sink: Sink
    enrich: Enrich
    dead_letters: DeadLetters
    settings: SinkSettings = field(default_factory=SinkSettings)
    guard: Guard[Any] = _no_guard
    read_limit: int = 2000
    stats: SinkStats = field(init=False)
    _pool: ThreadPoolExecutor = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.stats = stats_of(self.name)
        self._pool = ThreadPoolExecutor(1, thread_name_prefix=f"{self.name}-delivery")

    @property
    def name(self) -> str:
        return self.source.name

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)
        self.source.close()
        self.sink.close()
        self.dead_letters.close()

    def run(self, stop: threading.Event, poll_seconds: float = 1.0) -> None:
        """Follow the log until `stop` is set."""
        try:
            self.source.follow(stop, lambda: self.catch_up(stop), poll_seconds=poll_seconds)
        except SinkStopped:
            return

    def catch_up(self, stop: threading.Event | None = None) -> int:
        """Deliver everything after the position; returns the number of log events passed.

        Rounds are pipelined: the next round is read and enriched while the receiver works on
        the one before, which is delivered in the runner's delivery thread; a round is sent only
        once the one before it is complete (the receiver sees the log's order), and the position
        moves past a round only once all of it is acknowledged or dead-lettered."""
        stop = stop or threading.Event()
        total = 0
        position = self.source.position()
        sending: tuple[Future[None], int, int] | None = None  # delivery, its last position, rows
        try:
            while rows := self._next_rows(position, stop):
                records = self.enrich([r for r in rows if self._in_scope(r)])
                if sending is not None:
                    total += self._confirm(*sending)
                position = int(rows[-1][0])
                sending = (
                    self._pool.submit(self._deliver_round, records, stop),
                    position,
                    len(rows),
                )
            if sending is not None:
                total += self._confirm(*sending)
                sending = None
        finally:
            if sending is not None:
                sending[0].cancel()
                wait([sending[0]])  # never leave a delivery running behind a failed round
        return total

    def _deliver_round(self, records: list[SinkRecord], stop: threading.Event) -> None:
        started = time.perf_counter()
        try:
            for batch in batches(
                records, max_count=self.settings.max_count, max_bytes=self.settings.max_bytes
            ):
                self._deliver(batch, stop)
        finally:
            self.stats.delivery_seconds += time.perf_counter() - started

    def _confirm(self, delivery: Future[None], position: int, rows: int) -> int:
        """Wait for a round's delivery (its failure propagates), then move the position."""
        delivery.result()
        self.source.advance(position)
        self.stats.position = position
        self.stats.events_read += rows
        return rows

    def _in_scope(self, row: Row) -> bool:
        return self.scope is None or row[_TENANT] == self.scope

    def _next_rows(self, position: int, stop: threading.Event) -> list[Row]:
        """The next events; a short round waits `max_wait` once for more, unless it holds an
        alert (or nothing in scope, which need not wait for anything)."""
        rows = list(self.source.read(position, self.read_limit))
        wanted = [r for r in rows if self._in_scope(r)]
        if not wanted or len(wanted) >= self.settings.max_count or self.settings.max_wait <= 0:
            return rows
        if any(r.alert for r in self.enrich(wanted)):
            return rows
        if stop.wait(self.settings.max_wait):
            return rows
        more = self.source.read(int(rows[-1][0]), self.read_limit - len(rows))
        return rows + list(more)

    def _deliver(self, batch: list[SinkRecord], stop: threading.Event) -> None:
        """Deliver `batch`, retrying what was refused; dead-letter what is still refused after
        `max_attempts`. Raises SinkStopped if stop is asked while waiting for a retry."""
        pending = batch
        attempt = 0
        while True:
            attempt += 1
            errors, retry_after = self._attempt(pending)
            pending = [r for r in pending if r.event_id in errors]
            if not pending:
                return
            self.stats.failed += len(pending)
            if attempt >= self.settings.max_attempts:
                failures = [(r, errors[r.event_id]) for r in pending]
                self.dead_letters.add(self.owner, self.integration_id, failures, attempt)
                self.stats.dead_lettered += len(pending)
                log.warning(
                    "sink %s: %d record(s) dead-lettered after %d attempts: %s",
                    self.name,
                    len(pending),
                    attempt,
                    failures[0][1],
                )
                return
            self.stats.retries += 1
            delay = retry_delay(attempt, self.settings.retry_initial, retry_after=retry_after)
            if stop.wait(delay):
                raise SinkStopped(self.name)

    def _attempt(self, batch: list[SinkRecord]) -> tuple[dict[str, str], float | None]:
        """One attempt: the refused event ids with why, and the receiver's Retry-After."""
        try:
            delivery = self.guard(lambda: self._send(batch))
        except DeliveryFailed as exc:
            return {r.event_id: str(exc) for r in batch}, exc.retry_after
        except DependencyUnavailable as exc:
            retry = exc.details.get("retry_after_seconds") if exc.details else None
            error = "circuit breaker open"
            return {r.event_id: error for r in batch}, float(retry) if retry else None
        failed = dict(delivery.failed)
        self.stats.delivered += len(batch) - len(failed)
        return failed, None

    def _send(self, batch: list[SinkRecord]) -> Any:
        delivery = self.sink.deliver(batch)
        self.stats.batches += 1
        newest = batch[-1].body.get("timestamp")
        if isinstance(newest, str) and newest:
            self.stats.last_delivery_latency = _age(newest)
        return delivery  # per-item refusals mean the receiver is up: no breaker failure


def _age(timestamp: str) -> float:
    try:
        at = datetime.fromisoformat(timestamp)
    except ValueError:
        return 0.0
    if at.tzinfo is None:
        at = at.replace(tzinfo=UTC)
    return max(0.0, time.time() - at.timestamp())
