"""The migration-job runner on the in-memory event store: which candidate it claims, a job of a
kind it does not run, a stop between batches, and the writes of a job it holds (conflicts, a lost
lease, a heartbeat that cannot renew)."""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import pytest

from commands.application import GovernanceApplication
from commands.migration_runner import JobLost, MigrationRunner, RunnerSettings, _Held
from domain.constitution import DEFAULT_CONSTITUTIONAL_HASH
from domain.events import Actor, EventMeta
from domain.migration.job import JobStatus, MigrationJob
from tests.unit.migration.support import CountingKind

HASH = DEFAULT_CONSTITUTIONAL_HASH
MEMORY = {"PERSISTENCE_MODULE": "infra.memory.event_store:InMemoryFactory"}
TENANT = UUID("0b0e0000-0000-4000-8000-000000000002")
META = EventMeta(TENANT, Actor("admin"), HASH)


class _Queue:
    def __init__(self, *jobs: MigrationJob) -> None:
        self.jobs = [(TENANT, job.id) for job in jobs]

    def claimable(self, *, per_tenant_cap: int, limit: int) -> list[tuple[UUID, UUID]]:
        return self.jobs[:limit]


class _FlakyStore(GovernanceApplication):
    """The event store, with a connection that drops on the next `drops` saves (and then sets
    `stop`, as a supervisor stopping the worker would)."""

    name = GovernanceApplication.name
    drops = 0
    stop = threading.Event()

    def save_for(self, tenant_id: UUID, *aggregates: Any, **claims: Any) -> None:
        if self.drops:
            self.drops -= 1
            self.stop.set()
            raise OSError("connection lost")
        super().save_for(tenant_id, *aggregates, **claims)


@pytest.fixture
def app() -> _FlakyStore:
    return _FlakyStore(env=MEMORY)


def _job(app: GovernanceApplication, job_type: str = "counting") -> MigrationJob:
    job = MigrationJob.create(
        job_id=uuid4(),
        job_type=job_type,
        source_system="Legacy",
        source_config={},
        parameters={},
        source=None,
        meta=META,
    )
    app.save_for(TENANT, job)
    return job


def _runner(
    app: GovernanceApplication, tmp_path: Path, kind: CountingKind, *jobs: MigrationJob, **kw: Any
) -> MigrationRunner:
    settings = RunnerSettings(constitutional_hash=HASH, **kw)
    return MigrationRunner(app, {kind.name: kind}, _Queue(*jobs), tmp_path, settings, owner="w1")


def _stored(app: GovernanceApplication, job: MigrationJob) -> MigrationJob:
    return app.load(TENANT, job.id, MigrationJob)


def test_a_candidate_that_cannot_be_claimed_is_passed_over_for_the_next(
    app: GovernanceApplication, tmp_path: Path
) -> None:
    cancelled, pending = _job(app), _job(app)
    cancelled.cancel(META)
    app.save_for(TENANT, cancelled)

    assert _runner(app, tmp_path, CountingKind(), cancelled, pending).run_once() is True

    assert _stored(app, cancelled).status is JobStatus.CANCELLED
    done = _stored(app, pending)
    assert (done.status, done.processed, done.failed) == (JobStatus.COMPLETED, 3, 2)
    assert done.result_summary == {"counted": 3}


def test_a_job_of_a_kind_this_worker_does_not_run_fails_naming_it(
    app: GovernanceApplication, tmp_path: Path
) -> None:
    job = _job(app, "shadow_mode")
    assert _runner(app, tmp_path, CountingKind()).run_job(TENANT, job.id, threading.Event())
    failed = _stored(app, job)
    assert failed.status is JobStatus.FAILED
    assert failed.error_details == "RuntimeError: this worker runs no 'shadow_mode' jobs"


def test_a_stop_between_batches_records_the_progress_so_far_and_leaves_the_job_running(
    app: GovernanceApplication, tmp_path: Path
) -> None:
    stop = threading.Event()
    kind = CountingKind(items=5, after_batch=lambda done: done == 2 and stop.set())
    job = _job(app)
    runner = _runner(app, tmp_path, kind, job)

    assert runner.run_job(TENANT, job.id, stop)

    held = _stored(app, job)
    assert (held.status, held.lease_owner) == (JobStatus.RUNNING, "w1")
    assert (held.processed, held.failed, held.checkpoint) == (2, 1, {"next": 2})
    assert kind.contexts[0].checkpoint is None


def test_a_worker_stopped_before_its_first_batch_writes_nothing_but_its_claim(
    app: GovernanceApplication, tmp_path: Path
) -> None:
    stop = threading.Event()
    stop.set()
    kind = CountingKind()
    job = _job(app)

    assert _runner(app, tmp_path, kind, job).run_job(TENANT, job.id, stop)

    held = _stored(app, job)
    assert (held.status, held.version, held.processed) == (JobStatus.RUNNING, 2, 0)
    assert len(kind.contexts) == 1


def _held(app: GovernanceApplication, tmp_path: Path, **settings: Any) -> tuple[_Held, Any]:
    job = _job(app)
    runner = _runner(app, tmp_path, CountingKind(), job, **settings)
    claimed = runner.claim(TENANT, job.id)
    assert claimed is not None
    return _Held(runner, claimed), runner


def _renew_elsewhere(app: GovernanceApplication, job_id: UUID) -> None:
    """The same worker's lease renewed through another copy of the job."""
    other = app.load(TENANT, job_id, MigrationJob)
    other.renew("w1", 30, META)
    app.save_for(TENANT, other)


def test_a_write_that_meets_a_newer_version_of_a_job_still_held_is_tried_again(
    app: GovernanceApplication, tmp_path: Path
) -> None:
    held, runner = _held(app, tmp_path)
    calls: list[int] = []

    def renew_once_elsewhere(job: MigrationJob) -> None:
        if not calls:
            _renew_elsewhere(app, job.id)
        calls.append(job.version)
        runner.renew(job)

    held.record(renew_once_elsewhere)

    assert calls == [2, 3]  # the claimed version, then the version reloaded
    assert _stored(app, held.job).version == 4


def test_a_write_that_keeps_meeting_newer_versions_gives_the_job_up(
    app: GovernanceApplication, tmp_path: Path
) -> None:
    held, runner = _held(app, tmp_path)

    def renew_elsewhere_first(job: MigrationJob) -> None:
        _renew_elsewhere(app, job.id)
        runner.renew(job)

    with pytest.raises(JobLost):
        held.record(renew_elsewhere_first)
    assert _stored(app, held.job).version == 2 + 3  # only the three renewals made elsewhere


def test_once_the_job_is_lost_the_heartbeat_stops_and_nothing_more_is_written(
    app: GovernanceApplication, tmp_path: Path
) -> None:
    held, _ = _held(app, tmp_path, lease_seconds=0.03)
    cancelled = _stored(app, held.job)
    cancelled.cancel(META)
    app.save_for(TENANT, cancelled)

    held.heartbeat(threading.Event())  # returns: the renewal found the job cancelled

    assert held.lost
    written: list[MigrationJob] = []
    with pytest.raises(JobLost):
        held.record(written.append)
    assert written == []
    assert _stored(app, held.job).version == cancelled.version


def test_a_renewal_the_store_refuses_is_logged_and_the_heartbeat_goes_on(
    app: _FlakyStore, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    held, _ = _held(app, tmp_path, lease_seconds=0.03)
    app.drops, app.stop = 1, threading.Event()
    caplog.clear()  # the claim's INFO line, kept when a test before set the level to INFO

    with caplog.at_level(logging.WARNING, logger="commands.migration_runner"):
        held.heartbeat(app.stop)

    assert not held.lost
    assert caplog.messages == [f"migration job {held.job.id}: the lease was not renewed"]
    assert _stored(app, held.job).lease_owner == "w1"
