"""The one supervisor of a process's background workers (projection runners, the Kafka relay,
Kafka consumers, partition maintenance, and whatever follows the log later).

Each worker runs in a thread of its own until the supervisor stops it. A worker that raises, or
returns before it was asked to stop, is restarted after a backoff that doubles from
`backoff_seconds` up to `max_backoff_seconds` (and starts again from the bottom once a run lasted
`healthy_after_seconds`). Its state, restart count and last error are reported by `status()`
(readiness and metrics read them). `stop()` asks every worker to stop, waits for them, and
closes them. Workers that come and go with the configuration (one per SIEM sink) are added and
removed while the supervisor runs (`add`, `remove`).

A worker with a `lease` runs in one process at a time, however many processes start it: it stands
by (`standby`) until its lease is free, runs while it holds it (checked every
`lease_check_seconds`), and when the lease is lost it is stopped and stands by again; another
process takes over as soon as the owner dies (see `infra.postgres.worker_lease`).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Protocol

log = logging.getLogger(__name__)


class WorkerState(StrEnum):
    STARTING = "starting"
    RUNNING = "running"
    RESTARTING = "restarting"  # it failed; waiting for its backoff before running again
    STANDBY = "standby"  # another process holds its lease; it runs when that one stops
    STOPPED = "stopped"


class Lease(Protocol):
    """Ownership of a worker across processes (infra.postgres.worker_lease.AdvisoryLease)."""

    def acquire(self) -> bool: ...

    def held(self) -> bool: ...

    def release(self) -> None: ...


class LeaseLost(RuntimeError):
    """The worker's lease was lost while it ran (its database connection broke)."""


@dataclass(frozen=True)
class Worker:
    """A background worker: `run(stop)` works until `stop` is set; `close()` releases what it
    holds, once, after it stopped."""

    name: str
    run: Callable[[threading.Event], None]
    close: Callable[[], None] = lambda: None
    lease: Callable[[], Lease] | None = None  # set: one owner at a time across processes


@dataclass
class WorkerStatus:
    name: str
    state: WorkerState = WorkerState.STARTING
    restarts: int = 0
    last_error: str | None = None
    since: float = field(default_factory=time.time)  # when it entered its state (epoch seconds)


class Supervisor:
    def __init__(
        self,
        workers: Sequence[Worker],
        *,
        backoff_seconds: float = 1.0,
        max_backoff_seconds: float = 60.0,
        healthy_after_seconds: float = 60.0,
        lease_check_seconds: float = 1.0,
    ) -> None:
        names = [w.name for w in workers]
        if len(set(names)) != len(names):
            msg = f"worker names must be unique: {names}"
            raise ValueError(msg)
        self.workers = list(workers)
        self.backoff_seconds = backoff_seconds
        self.max_backoff_seconds = max_backoff_seconds
        self.healthy_after_seconds = healthy_after_seconds
        self.lease_check_seconds = lease_check_seconds
        self._stop = threading.Event()
        self._threads: dict[str, threading.Thread] = {}
        self._stops = {w.name: threading.Event() for w in self.workers}
        self._status = {w.name: WorkerStatus(w.name) for w in self.workers}
        self._lock = threading.Lock()

    @property
    def names(self) -> list[str]:
        return [w.name for w in self.workers]

    def start(self) -> None:
        if self._threads:
            return
        for worker in self.workers:
            self._start(worker)

    def _start(self, worker: Worker) -> None:
        thread = threading.Thread(
            target=self._watch,
            args=(worker, self._stops[worker.name]),
            name=f"worker-{worker.name}",
            daemon=True,
        )
        self._threads[worker.name] = thread
        thread.start()

    def add(self, worker: Worker) -> None:
        """Start one more worker under this (running) supervisor."""
        with self._lock:
            if worker.name in self._status:
                msg = f"worker names must be unique: {worker.name} runs already"
                raise ValueError(msg)
            self.workers.append(worker)
            self._stops[worker.name] = threading.Event()
            self._status[worker.name] = WorkerStatus(worker.name)
        if self._stop.is_set():
            return
        self._start(worker)

    def remove(self, name: str, timeout: float = 10.0) -> None:
        """Stop one worker, wait up to `timeout` seconds for it, close it and forget it."""
        with self._lock:
            worker = next((w for w in self.workers if w.name == name), None)
            if worker is None:
                return
            self._stops[name].set()
            thread = self._threads.pop(name, None)
        if thread is not None:
            thread.join(timeout)
            if thread.is_alive():
                log.warning("%s did not stop within %.0f s", thread.name, timeout)
        _close(worker)
        with self._lock:
            self.workers.remove(worker)
            del self._stops[name], self._status[name]

    def stop(self, timeout: float = 10.0) -> None:
        """Ask every worker to stop, wait up to `timeout` seconds in all, then close each."""
        self._stop.set()
        with self._lock:
            for event in self._stops.values():
                event.set()
            threads = list(self._threads.values())
            workers = list(self.workers)
        deadline = time.monotonic() + timeout
        for thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()))
            if thread.is_alive():
                log.warning("%s did not stop within %.0f s", thread.name, timeout)
        for worker in workers:
            _close(worker)
        self._threads = {}

    def status(self) -> list[WorkerStatus]:
        with self._lock:
            return [
                WorkerStatus(s.name, s.state, s.restarts, s.last_error, s.since)
                for s in self._status.values()
            ]

    def _set(self, name: str, state: WorkerState, error: str | None = None) -> None:
        with self._lock:
            status = self._status.get(name)
            if status is None:  # removed meanwhile
                return
            status.state = state
            status.since = time.time()
            if state is WorkerState.RESTARTING:
                status.restarts += 1
                status.last_error = error

    def _watch(self, worker: Worker, stop: threading.Event) -> None:
        delay = self.backoff_seconds
        while not stop.is_set():
            self._set(worker.name, WorkerState.RUNNING)
            started = time.monotonic()
            try:
                self._run(worker, stop)
            except Exception as exc:
                error = f"{type(exc).__name__}: {exc}"
                log.exception("worker %s failed", worker.name)
            else:
                if stop.is_set():
                    break
                error = "returned before it was stopped"
                log.error("worker %s %s", worker.name, error)
            if time.monotonic() - started >= self.healthy_after_seconds:
                delay = self.backoff_seconds
            log.warning("restarting worker %s in %.1f s", worker.name, delay)
            self._set(worker.name, WorkerState.RESTARTING, error)
            stop.wait(delay)
            delay = min(delay * 2, self.max_backoff_seconds)
        self._set(worker.name, WorkerState.STOPPED)

    def _run(self, worker: Worker, stop: threading.Event) -> None:
        if worker.lease is None:
            worker.run(stop)
            return
        lease = worker.lease()
        try:
            while not lease.acquire():
                self._set(worker.name, WorkerState.STANDBY)
                if stop.wait(self.lease_check_seconds):
                    return
            self._set(worker.name, WorkerState.RUNNING)
            held = threading.Event()  # set: run no longer (stopped, or the lease is lost)
            watch = threading.Thread(
                target=self._hold,
                args=(lease, stop, held),
                name=f"lease-{worker.name}",
                daemon=True,
            )
            watch.start()
            try:
                worker.run(held)
            finally:
                held.set()
                watch.join()
            if not stop.is_set():
                msg = f"{worker.name} lost its lease; another process may run it now"
                raise LeaseLost(msg)
        finally:
            lease.release()

    def _hold(self, lease: Lease, stop: threading.Event, held: threading.Event) -> None:
        """Set `held` when `stop` is (at once) or the lease is lost (checked every
        `lease_check_seconds`); return when the worker ended by itself."""
        while not stop.wait(self.lease_check_seconds):
            if held.is_set():
                return
            if not lease.held():
                log.warning("lease lost; stopping this process's run of the worker")
                break
        held.set()


def _close(worker: Worker) -> None:
    try:
        worker.close()
    except Exception:
        log.exception("closing worker %s failed", worker.name)
