"""The supervisor starts every worker, restarts one that fails (with a doubling backoff, counted
and visible in its status), and stops and closes them all."""

from __future__ import annotations

import threading

import pytest

from infra.supervisor import Supervisor, Worker, WorkerState

WAIT = 10.0  # generous: only reached when something is broken


def test_a_failing_worker_is_restarted_and_its_failures_are_reported() -> None:
    runs: list[int] = []
    third_run = threading.Event()

    def flaky(stop: threading.Event) -> None:
        runs.append(len(runs) + 1)
        if len(runs) < 3:
            msg = f"boom {len(runs)}"
            raise RuntimeError(msg)
        third_run.set()
        stop.wait()

    closed = threading.Event()
    supervisor = Supervisor(
        [Worker("flaky", flaky, closed.set)], backoff_seconds=0.01, max_backoff_seconds=0.02
    )
    supervisor.start()
    try:
        assert third_run.wait(WAIT)
        (status,) = supervisor.status()
        assert status.state is WorkerState.RUNNING
        assert status.restarts == 2
        assert status.last_error == "RuntimeError: boom 2"
    finally:
        supervisor.stop()
    assert closed.is_set()
    assert supervisor.status()[0].state is WorkerState.STOPPED
    assert runs == [1, 2, 3]


def test_a_worker_that_keeps_failing_shows_as_restarting() -> None:
    failed = threading.Event()

    def broken(stop: threading.Event) -> None:
        failed.set()
        raise OSError("database away")

    supervisor = Supervisor([Worker("broken", broken)], backoff_seconds=60)
    supervisor.start()
    try:
        assert failed.wait(WAIT)
        for _ in range(1000):
            status = supervisor.status()[0]
            if status.state is WorkerState.RESTARTING:
                break
            threading.Event().wait(0.01)
        assert status.state is WorkerState.RESTARTING
        assert status.restarts == 1
        assert status.last_error == "OSError: database away"
    finally:
        supervisor.stop(timeout=WAIT)  # the backoff wait ends when stop is asked


def test_a_worker_that_returns_on_its_own_is_restarted() -> None:
    calls: list[str] = []
    second = threading.Event()

    def quits(stop: threading.Event) -> None:
        calls.append("run")
        if len(calls) == 2:
            second.set()
            stop.wait()

    supervisor = Supervisor([Worker("quits", quits)], backoff_seconds=0.01)
    supervisor.start()
    try:
        assert second.wait(WAIT)
        assert supervisor.status()[0].last_error == "returned before it was stopped"
    finally:
        supervisor.stop()


def test_every_worker_runs_and_stops() -> None:
    started = {name: threading.Event() for name in ("a", "b", "c")}

    def worker(name: str) -> Worker:
        def run(stop: threading.Event) -> None:
            started[name].set()
            stop.wait()

        return Worker(name, run)

    supervisor = Supervisor([worker(n) for n in started])
    supervisor.start()
    assert all(e.wait(WAIT) for e in started.values())
    supervisor.stop()
    assert {s.name: s.state for s in supervisor.status()} == dict.fromkeys(
        started, WorkerState.STOPPED
    )


def test_worker_names_are_unique() -> None:
    with pytest.raises(ValueError, match="unique"):
        Supervisor([Worker("a", threading.Event.wait), Worker("a", threading.Event.wait)])


def test_workers_are_added_and_removed_while_it_runs() -> None:
    started = {"a": threading.Event(), "b": threading.Event()}
    stopped = {"a": threading.Event(), "b": threading.Event()}
    closed: list[str] = []

    def worker(name: str) -> Worker:
        def run(stop: threading.Event) -> None:
            started[name].set()
            stop.wait()
            stopped[name].set()

        return Worker(name, run, lambda: closed.append(name))

    supervisor = Supervisor([worker("a")])
    supervisor.start()
    try:
        assert started["a"].wait(WAIT)
        supervisor.add(worker("b"))
        assert started["b"].wait(WAIT)
        with pytest.raises(ValueError, match="unique"):
            supervisor.add(worker("b"))
        assert sorted(s.name for s in supervisor.status()) == ["a", "b"]
        supervisor.remove("b")
        assert stopped["b"].is_set()
        assert not stopped["a"].is_set()  # only the removed one stopped
        assert closed == ["b"]
        assert [s.name for s in supervisor.status()] == ["a"]
        supervisor.remove("never-there")  # nothing to do
    finally:
        supervisor.stop()
    assert closed == ["b", "a"]


def test_starting_twice_starts_nothing_more_and_a_failed_close_is_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    runs: list[str] = []
    running = threading.Event()

    def run(stop: threading.Event) -> None:
        runs.append("run")
        running.set()
        stop.wait()

    def close() -> None:
        raise OSError("socket already gone")

    supervisor = Supervisor([Worker("w", run, close)])
    assert supervisor.names == ["w"]
    supervisor.start()
    assert running.wait(WAIT)
    supervisor.start()
    supervisor.stop()
    assert runs == ["run"]
    assert "closing worker w failed" in caplog.text


def test_a_worker_that_ignores_stop_is_reported_and_may_end_after_it_was_removed(
    caplog: pytest.LogCaptureFixture,
) -> None:
    running = {"kept": threading.Event(), "gone": threading.Event()}
    release = threading.Event()

    def stubborn(name: str) -> Worker:
        def run(stop: threading.Event) -> None:
            del stop  # ignored: it ends only when released
            running[name].set()
            release.wait(WAIT)

        return Worker(name, run)

    supervisor = Supervisor([stubborn("kept"), stubborn("gone")])
    supervisor.start()
    try:
        assert running["kept"].wait(WAIT)
        assert running["gone"].wait(WAIT)
        supervisor.remove("gone", timeout=0.01)
        assert "worker-gone did not stop within 0 s" in caplog.text
        assert [s.name for s in supervisor.status()] == ["kept"]
        supervisor.stop(timeout=0.01)
        assert "worker-kept did not stop within 0 s" in caplog.text
    finally:
        release.set()
    threads = [t for t in threading.enumerate() if t.name in ("worker-kept", "worker-gone")]
    for thread in threads:
        thread.join(WAIT)
    assert supervisor.status()[0].state is WorkerState.STOPPED
    assert [s.name for s in supervisor.status()] == ["kept"]  # the removed one stays gone


def _restart_delays(caplog: pytest.LogCaptureFixture, healthy_after_seconds: float) -> list[str]:
    failures = threading.Event()
    runs: list[int] = []

    def fails(stop: threading.Event) -> None:
        runs.append(1)
        if len(runs) == 4:
            failures.set()
            stop.wait()
            return
        raise RuntimeError("boom")

    supervisor = Supervisor(
        [Worker("w", fails)],
        backoff_seconds=0.1,
        max_backoff_seconds=60,
        healthy_after_seconds=healthy_after_seconds,
    )
    caplog.clear()
    supervisor.start()
    try:
        assert failures.wait(WAIT)
    finally:
        supervisor.stop()
    return [r.getMessage() for r in caplog.records if r.getMessage().startswith("restarting")]


def test_the_backoff_doubles_and_starts_again_after_a_healthy_run(
    caplog: pytest.LogCaptureFixture,
) -> None:
    doubling = _restart_delays(caplog, healthy_after_seconds=60)
    assert doubling == [f"restarting worker w in {d} s" for d in ("0.1", "0.2", "0.4")]
    # every run counts as healthy: each restart waits the first backoff again
    again = _restart_delays(caplog, healthy_after_seconds=0)
    assert again == [f"restarting worker w in {d} s" for d in ("0.1", "0.1", "0.1")]


class OneLease:
    """A lease of this process only (the supervisor's side of the protocol)."""

    def __init__(self) -> None:
        self.taken = False
        self.releases = 0

    def acquire(self) -> bool:
        self.taken = True
        return True

    def held(self) -> bool:
        return self.taken

    def release(self) -> None:
        self.taken = False
        self.releases += 1


def test_a_leased_worker_that_returns_by_itself_gives_its_lease_back_and_runs_again() -> None:
    lease = OneLease()
    runs: list[int] = []
    second = threading.Event()

    def run(held: threading.Event) -> None:
        runs.append(1)
        if len(runs) == 2:
            second.set()
            held.wait()

    supervisor = Supervisor(
        [Worker("leased", run, lease=lambda: lease)],
        backoff_seconds=0.01,
        lease_check_seconds=0.01,
    )
    supervisor.start()
    try:
        assert second.wait(WAIT)
        (status,) = supervisor.status()
        assert status.restarts == 1
        assert (
            status.last_error == "LeaseLost: leased lost its lease; another process may run it now"
        )
        assert lease.releases == 1
    finally:
        supervisor.stop()
    assert lease.releases == 2
