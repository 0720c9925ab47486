"""One owner per leased worker across processes, on the real PostgreSQL: two supervisors (two
processes' worth, each with its own connections) start the same leased worker; exactly one runs
it while the other stands by, and the other takes over within a lease check once the owner stops
or loses its database connection."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import psycopg
import pytest

from api.bootstrap import SINGLE_OWNER, System, build
from api.settings import Settings
from infra.postgres.worker_lease import AdvisoryLease, lock_key
from infra.supervisor import Supervisor, Worker, WorkerState

pytestmark = pytest.mark.postgres
NAME = "leased-test-worker"


def _worker(runs: list[str], who: str, system: System) -> Worker:
    def run(stop: threading.Event) -> None:
        runs.append(who)
        stop.wait()

    return Worker(NAME, run, lease=lambda: AdvisoryLease(system.projector_conninfo, NAME))


def _state(supervisor: Supervisor) -> WorkerState:
    return next(s.state for s in supervisor.status() if s.name == NAME)


def _until(check: Callable[[], bool], seconds: float = 10.0) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.02)


def test_one_process_runs_a_leased_worker_and_another_takes_over_when_it_stops(
    system: System,
) -> None:
    runs: list[str] = []
    first = Supervisor([_worker(runs, "first", system)], lease_check_seconds=0.2)
    second = Supervisor([_worker(runs, "second", system)], lease_check_seconds=0.2)
    first.start()
    try:
        _until(lambda: runs == ["first"])
        second.start()
        _until(lambda: _state(second) is WorkerState.STANDBY)
        time.sleep(0.6)  # several lease checks: still standing by
        assert runs == ["first"]
        assert _state(first) is WorkerState.RUNNING
        first.stop()
        started = time.monotonic()
        _until(lambda: runs == ["first", "second"])
        assert time.monotonic() - started < 2.0
        assert _state(second) is WorkerState.RUNNING
    finally:
        first.stop()
        second.stop()


def test_an_owner_that_loses_its_connection_steps_down(system: System) -> None:
    runs: list[str] = []
    first = Supervisor(
        [_worker(runs, "first", system)], lease_check_seconds=0.2, backoff_seconds=0.2
    )
    second = Supervisor([_worker(runs, "second", system)], lease_check_seconds=0.2)
    first.start()
    second.start()
    try:
        _until(lambda: len(runs) == 1)
        owner = runs[0]
        key = lock_key(NAME)
        with psycopg.connect(system.admin_url, autocommit=True) as admin:
            killed = admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_locks WHERE locktype = 'advisory' "
                "AND granted AND objsubid = 1 AND classid = %s::oid AND objid = %s::oid",
                [(key >> 32) & 0xFFFFFFFF, key & 0xFFFFFFFF],
            ).fetchall()
        assert killed == [(True,)]
        _until(lambda: len(runs) >= 2)  # the lock went with the connection: the other took it
        assert runs[1] != owner
        restarted = first if owner == "first" else second
        _until(lambda: _state(restarted) in {WorkerState.STANDBY, WorkerState.RESTARTING})
        time.sleep(0.6)
        assert [_state(s) for s in (first, second)].count(WorkerState.RUNNING) == 1
    finally:
        first.stop()
        second.stop()


def test_two_deployments_on_one_database_run_each_single_owner_worker_once(
    settings: Settings,
) -> None:
    one, two = build(settings, apply_migrations=False), build(settings, apply_migrations=False)
    try:
        for system in (one, two):
            system.start_workers(sorted(SINGLE_OWNER))
            assert system.supervisor is not None
            system.supervisor.lease_check_seconds = 0.2

        def states() -> dict[str, list[str]]:
            by_name: dict[str, list[str]] = {}
            for system in (one, two):
                for status in system.worker_status():
                    by_name.setdefault(status.name, []).append(status.state.value)
            return by_name

        _until(lambda: all(sorted(s) == ["running", "standby"] for s in states().values()))
        assert set(states()) == SINGLE_OWNER
        one.close()  # the owner of some of them stops: the other process runs them all
        _until(lambda: all(s.state is WorkerState.RUNNING for s in two.worker_status()))
    finally:
        one.close()
        two.close()
