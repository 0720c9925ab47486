"""Starting and cancelling migration jobs on the in-memory event store: every bad field at once,
uploads removed when no job is created, and a cancel that meets a worker's writes."""

from __future__ import annotations

import io
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest

from commands.application import GovernanceApplication
from commands.context import CommandContext, Principal
from commands.migration_sources import JobSources, Upload
from commands.migrations import CANCEL_ATTEMPTS, MigrationJobs, StartJob
from domain.constitution import DEFAULT_CONSTITUTIONAL_HASH
from domain.errors import ConcurrentModification, ValidationFailed
from domain.events import Actor, EventMeta
from domain.maci import MaciRole
from domain.migration.job import JobStatus, MigrationJob
from tests.unit.migration.support import CountingKind

HASH = DEFAULT_CONSTITUTIONAL_HASH
MEMORY = {"PERSISTENCE_MODULE": "infra.memory.event_store:InMemoryFactory"}
TENANT = UUID("0b0e0000-0000-4000-8000-000000000001")
ADMIN = CommandContext(Principal("admin", TENANT, (MaciRole.EXECUTIVE,)), HASH)
WORKER = "worker-1"


class _BusyWorker(GovernanceApplication):
    """The event store, with a worker that renews a job's lease just before each of the next
    `renewals` saves of a cancelled job (so each of those saves meets a newer version)."""

    name = GovernanceApplication.name
    renewals = 0

    def save_for(self, tenant_id: UUID, *aggregates: Any, **claims: Any) -> None:
        cancels = [a for a in aggregates if getattr(a, "status", None) is JobStatus.CANCELLED]
        if cancels and self.renewals:
            self.renewals -= 1
            held = self.load(tenant_id, cancels[0].id, MigrationJob)
            held.renew(WORKER, 30, EventMeta(tenant_id, Actor(WORKER), HASH))
            super().save_for(tenant_id, held)
        super().save_for(tenant_id, *aggregates, **claims)


@pytest.fixture
def app() -> _BusyWorker:
    return _BusyWorker(env=MEMORY)


@pytest.fixture
def uploads(tmp_path: Path) -> Path:
    return tmp_path / "uploads"


def _jobs(app: GovernanceApplication, uploads: Path, kind: CountingKind | None = None) -> Any:
    sources = JobSources(uploads, [], 1 << 20, 1 << 22)
    kind = kind or CountingKind()
    return MigrationJobs(app, HASH, {kind.name: kind}, sources)


def _upload() -> Upload:
    return Upload("legacy.json", io.BytesIO(b"{}"))


def test_every_bad_field_is_named_at_once_and_the_upload_is_not_kept(
    app: GovernanceApplication, uploads: Path
) -> None:
    with pytest.raises(ValidationFailed) as err:
        _jobs(app, uploads).start(ADMIN, TENANT, StartJob("nonsense", " ", upload=_upload()))
    assert [(p["field"], p["message"]) for p in err.value.details["fields"]] == [
        ("job_type", "must be one of counting"),
        ("source_system", "must be 1 to 255 characters"),
    ]
    assert list(uploads.iterdir()) == []


def test_a_secret_with_no_key_provider_is_refused_and_the_upload_is_not_kept(
    app: GovernanceApplication, uploads: Path
) -> None:
    kind = CountingKind(secret_parameters=frozenset({"dsn"}))
    command = StartJob("counting", "Legacy", {"dsn": "postgresql://u:pw@db/x"}, _upload())
    with pytest.raises(ValidationFailed) as err:
        _jobs(app, uploads, kind).start(ADMIN, TENANT, command)
    assert err.value.details["fields"] == [
        {"field": "dsn", "message": "cannot be kept safely: no key provider is configured"}
    ]
    assert list(uploads.iterdir()) == []


def test_an_upload_is_kept_with_the_job_it_started(
    app: GovernanceApplication, uploads: Path
) -> None:
    job = _jobs(app, uploads).start(ADMIN, TENANT, StartJob("counting", "Legacy", upload=_upload()))
    assert job.source is not None
    assert Path(job.source["path"]).read_bytes() == b"{}"
    assert [p.name for p in uploads.iterdir()] == [str(job.id)]


def _running(app: GovernanceApplication, uploads: Path) -> tuple[MigrationJobs, MigrationJob]:
    jobs = _jobs(app, uploads)
    job = jobs.start(ADMIN, TENANT, StartJob("counting", "Legacy"))
    job.claim(WORKER, datetime.now(UTC), 30, EventMeta(TENANT, Actor(WORKER), HASH))
    app.save_for(TENANT, job)
    return jobs, job


def test_a_cancel_that_meets_a_workers_writes_reloads_and_cancels(
    app: _BusyWorker, uploads: Path
) -> None:
    jobs, job = _running(app, uploads)
    app.renewals = CANCEL_ATTEMPTS - 1
    cancelled = jobs.cancel(ADMIN, TENANT, job.id)
    assert cancelled.status is JobStatus.CANCELLED
    stored = app.load(TENANT, job.id, MigrationJob)
    assert (stored.status, stored.version) == (
        JobStatus.CANCELLED,
        job.version + CANCEL_ATTEMPTS,  # the worker's renewals, then the cancel
    )


def test_a_cancel_that_keeps_meeting_writes_gives_up(app: _BusyWorker, uploads: Path) -> None:
    jobs, job = _running(app, uploads)
    app.renewals = CANCEL_ATTEMPTS
    with pytest.raises(ConcurrentModification):
        jobs.cancel(ADMIN, TENANT, job.id)
    stored = app.load(TENANT, job.id, MigrationJob)
    assert (stored.status, stored.lease_owner) == (JobStatus.RUNNING, WORKER)
    assert stored.version == job.version + CANCEL_ATTEMPTS
