"""The MigrationJob aggregate: its states, claims, leases, and the guards that keep terminal
states final and a worker that lost its lease from writing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from uuid import uuid4

import pytest

from domain.errors import InvalidStateTransition, ValidationFailed
from domain.events import Actor, EventMeta
from domain.migration.job import JobStatus, MigrationJob

META = EventMeta(uuid4(), Actor("alice"), "cdd01ef066bc6cf2")


def _job() -> MigrationJob:
    return MigrationJob.create(
        job_id=uuid4(),
        job_type="policy_conversion",
        source_system="LegacyGovernanceV1",
        source_config={},
        parameters={},
        source=None,
        meta=META,
    )


def _progress(job: MigrationJob, owner: str, processed: int) -> None:
    job.progress(
        owner,
        total=10,
        processed=processed,
        successful=processed,
        failed=0,
        checkpoint={"next": processed},
        summary={},
        failures=[],
        meta=META,
    )


def test_a_new_job_is_pending_and_created_by_its_requester() -> None:
    job = _job()
    assert (job.status, job.created_by, job.claims, job.started_at) == (
        JobStatus.PENDING,
        "alice",
        0,
        None,
    )


def test_an_empty_source_system_is_refused() -> None:
    with pytest.raises(ValidationFailed):
        MigrationJob.create(
            job_id=uuid4(),
            job_type="policy_conversion",
            source_system=" ",
            source_config={},
            parameters={},
            source=None,
            meta=META,
        )


def test_a_claim_starts_the_job_with_a_lease_from_the_event_time() -> None:
    job = _job()
    job.claim("w1", datetime.now(UTC), 30, META)
    assert job.status is JobStatus.RUNNING
    assert job.lease_owner == "w1"
    assert job.started_at is not None
    assert job.lease_expires_at == job.started_at + timedelta(seconds=30)


def test_a_held_lease_refuses_another_claim_until_it_expires() -> None:
    job = _job()
    job.claim("w1", datetime.now(UTC), 30, META)
    with pytest.raises(InvalidStateTransition):
        job.claim("w2", datetime.now(UTC), 30, META)
    assert job.lease_expires_at is not None
    job.claim("w2", job.lease_expires_at, 30, META)
    assert (job.lease_owner, job.claims) == ("w2", 2)


def test_a_worker_that_lost_its_lease_cannot_write() -> None:
    job = _job()
    job.claim("w1", datetime.now(UTC), 1, META)
    assert job.lease_expires_at is not None
    job.claim("w2", job.lease_expires_at, 30, META)
    for write in (
        lambda: job.renew("w1", 30, META),
        lambda: _progress(job, "w1", 3),
        lambda: job.complete("w1", counts=(1, 1, 1, 0), result_summary={}, meta=META),
        lambda: job.fail("w1", "boom", META),
    ):
        with pytest.raises(InvalidStateTransition):
            write()
    _progress(job, "w2", 4)
    assert (job.processed, job.checkpoint) == (4, {"next": 4})


@pytest.mark.parametrize("end", ["complete", "fail", "cancel"])
def test_terminal_states_are_final(end: str) -> None:
    job = _job()
    job.claim("w1", datetime.now(UTC), 30, META)
    if end == "complete":
        job.complete("w1", counts=(2, 2, 2, 0), result_summary={"ok": 1}, meta=META)
    elif end == "fail":
        job.fail("w1", "x" * 10_000, META)
        assert job.error_details is not None
        assert len(job.error_details) == 4000
    else:
        job.cancel(META)
    with pytest.raises(InvalidStateTransition):
        job.cancel(META)
    assert not job.claimable(datetime.now(UTC) + timedelta(days=1))
    with pytest.raises(InvalidStateTransition):
        job.claim("w2", datetime.now(UTC) + timedelta(days=1), 30, META)


def test_a_pending_job_may_be_cancelled_and_is_never_claimed() -> None:
    job = _job()
    job.cancel(META)
    assert job.status is JobStatus.CANCELLED
    assert not job.claimable(datetime.now(UTC))


def test_replaying_the_events_rebuilds_the_same_job() -> None:
    job = _job()
    job.claim("w1", datetime.now(UTC), 30, META)
    _progress(job, "w1", 5)
    job.complete("w1", counts=(10, 10, 9, 1), result_summary={"a": 1}, meta=META)
    events = job.collect_events()
    copy = None
    for event in events:
        copy = event.mutate(copy)
    assert isinstance(copy, MigrationJob)
    assert vars(copy) == vars(job)


def test_secrets_in_the_source_config_are_never_recorded() -> None:
    job = MigrationJob.create(
        job_id=uuid4(),
        job_type="decision_log_import",
        source_system="Legacy",
        source_config={
            "dsn": "postgresql://reader:s3cret@db.internal:5432/legacy",
            "password": "hunter2",
            "auth": {"api_key": "abc", "user": "reader"},
            "format": "csv",
            "mirrors": ["https://reader:pa55@mirror.internal/legacy", {"token": "t0k"}, 3],
        },
        parameters={},
        source=None,
        meta=META,
    )
    assert job.source_config == {
        "dsn": "postgresql://reader:***REDACTED***@db.internal:5432/legacy",
        "password": "***REDACTED***",
        "auth": {"api_key": "***REDACTED***", "user": "reader"},
        "format": "csv",
        "mirrors": [
            "https://reader:***REDACTED***@mirror.internal/legacy",
            {"token": "***REDACTED***"},
            3,
        ],
    }
    events = repr(job.collect_events())
    assert not any(secret in events for secret in ("s3cret", "hunter2", "pa55", "t0k"))
