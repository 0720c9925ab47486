"""The migration-job runner: the `migration_jobs` worker that claims jobs and runs them batch by
batch through their kind (`commands/migration_kinds.py`).

- **Claim**: the queue (a port) names jobs that are pending, or running on an expired lease,
  of tenants under their cap of running jobs; the runner claims one through the aggregate, and the
  event store's optimistic concurrency lets one claimer of a job win.
- **Lease**: renewed by a heartbeat thread every third of its length while the job runs; a
  worker that dies stops renewing, and once the lease expires another worker re-claims the job
  and resumes it from the checkpoint of its last recorded progress.
- **Progress**: at most one event per batch and per second (faster batches are recorded
  together); the counts are cumulative, so a batch done twice across a crash counts once.
- **Cancellation**: a cancel is an event on the job, so the runner's next write meets a newer
  version; it reloads, sees the job cancelled and stops between batches.
- **Failure**: any error of the kind fails the job with its message.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import socket
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any, Protocol
from uuid import UUID, uuid4

from commands import job_secrets
from commands.application import GovernanceApplication
from commands.migration_kinds import BatchOutcome, FailedItem, JobContext, JobKind
from commands.migrations import job_source
from domain.errors import ConcurrentModification, DomainError, InvalidStateTransition, NotFound
from domain.events import Actor, EventMeta
from domain.migration.job import MigrationJob
from domain.secrets import SecretSealer

log = logging.getLogger(__name__)


class JobQueue(Protocol):
    """Port: which jobs a worker may try to claim."""

    def claimable(self, *, per_tenant_cap: int, limit: int) -> list[tuple[UUID, UUID]]:
        """(tenant_id, job_id) of pending jobs and of running ones whose lease has expired,
        oldest first, leaving out tenants already running `per_tenant_cap` jobs."""
        ...


@dataclass(frozen=True)
class RunnerSettings:
    lease_seconds: float = 30.0
    # At most one progress event (with its checkpoint) per this many seconds: fewer writes,
    # against more work done again after a crash.
    progress_seconds: float = 1.0
    poll_seconds: float = 1.0
    per_tenant_cap: int = 2
    constitutional_hash: str = ""


class JobLost(Exception):
    """The job was cancelled, or another worker holds it now: stop working on it."""


class MigrationRunner:
    def __init__(
        self,
        app: GovernanceApplication,
        kinds: Mapping[str, JobKind],
        queue: JobQueue,
        work_root: Path,
        settings: RunnerSettings,
        *,
        owner: str | None = None,
        sealer: SecretSealer | None = None,
    ) -> None:
        self._sealer = sealer  # opens the kinds' secret parameters (commands/job_secrets.py)
        self._app = app
        self._kinds = kinds
        self._queue = queue
        self._work_root = work_root
        self._settings = settings
        self.owner = owner or f"{socket.gethostname()}:{os.getpid()}:{uuid4().hex[:8]}"
        self._actor = Actor(sub=f"migration-worker:{self.owner}", actor_type="system")

    def run(self, stop: threading.Event) -> None:
        """Claim and run jobs until `stop` is set (the supervised worker's body)."""
        while not stop.is_set():  # at once after a job, else after the poll interval
            stop.wait(0 if self.run_once(stop) else self._settings.poll_seconds)

    def run_once(self, stop: threading.Event | None = None) -> bool:
        """Claim one job and run it to its end (or until `stop`); False when none was claimed."""
        candidates = self._queue.claimable(per_tenant_cap=self._settings.per_tenant_cap, limit=20)
        for tenant_id, job_id in candidates:
            job = self.claim(tenant_id, job_id)
            if job is not None:
                self._run(job, stop or threading.Event())
                return True
        return False

    def run_job(self, tenant_id: UUID, job_id: UUID, stop: threading.Event) -> bool:
        """Claim this job and run it to its end; False if it could not be claimed."""
        job = self.claim(tenant_id, job_id)
        if job is None:
            return False
        self._run(job, stop)
        return True

    def claim(self, tenant_id: UUID, job_id: UUID) -> MigrationJob | None:
        """The job, claimed by this worker; None if it is not claimable or another won it."""
        try:
            job = self._app.load(tenant_id, job_id, MigrationJob)
            job.claim(self.owner, datetime.now(UTC), self._settings.lease_seconds, self._meta(job))
            self._app.save_for(tenant_id, job)
        except (InvalidStateTransition, ConcurrentModification, NotFound):
            return None
        log.info("migration job %s (%s) claimed by %s", job_id, job.job_type, self.owner)
        return job

    # --- running one job ----------------------------------------------------------------------

    def _run(self, job: MigrationJob, stop: threading.Event) -> None:
        held = _Held(self, job)
        heartbeat = threading.Thread(
            target=held.heartbeat, name=f"lease-{job.id}", daemon=True, args=(stop,)
        )
        heartbeat.start()
        try:
            self._work(held, stop)
        except JobLost:
            log.info("migration job %s: stopped (cancelled, or held by another worker)", job.id)
        except Exception as failure:  # noqa: BLE001 - any error of the kind fails the job
            message = failure.message if isinstance(failure, DomainError) else str(failure)
            message = _SERVER_PATH.sub(r"\1", message)  # the tenant sees file names, not paths
            log.warning("migration job %s failed: %s", job.id, message)
            error = f"{type(failure).__name__}: {message}"
            with contextlib.suppress(JobLost):
                held.record(lambda j: j.fail(self.owner, error, self._meta(j)))
        finally:
            held.done.set()
            heartbeat.join()

    def _work(self, held: _Held, stop: threading.Event) -> None:
        job = held.job
        kind = self._kinds.get(job.job_type)
        if kind is None:
            raise RuntimeError(f"this worker runs no {job.job_type!r} jobs")
        context = self.context(job)
        cursor = kind.open(context)
        try:
            total = cursor.total
            last: BatchOutcome | None = None
            unrecorded: list[FailedItem] = []
            recorded_at = time.monotonic()
            while True:
                if stop.is_set():
                    if last is not None:
                        held.record(
                            partial(self._progress, total=total, outcome=last, failed=unrecorded)
                        )
                    return
                outcome = cursor.next_batch()
                if outcome is None:
                    break
                last = outcome
                unrecorded += outcome.failed
                if time.monotonic() - recorded_at >= self._settings.progress_seconds:
                    held.record(
                        partial(self._progress, total=total, outcome=last, failed=unrecorded)
                    )
                    unrecorded = []
                    recorded_at = time.monotonic()
            if last is not None and unrecorded:
                held.record(partial(self._progress, total=total, outcome=last, failed=unrecorded))
            summary = dict(last.summary) if last is not None else dict(job.summary)
            result = dict(kind.report(context, summary))
            processed = last.processed if last is not None else job.processed
            failed = _failed_count(summary, held.job.failed)
            counts = (total, processed, processed - failed, failed)
            held.record(
                lambda j: j.complete(
                    self.owner, counts=counts, result_summary=result, meta=self._meta(j)
                )
            )
        finally:
            cursor.close()

    def context(self, job: MigrationJob) -> JobContext:
        work_dir = self._work_root / str(job.id)
        work_dir.mkdir(parents=True, exist_ok=True)
        return JobContext(
            tenant_id=job.tenant_id,
            job_id=job.id,
            kind=job.job_type,
            parameters=job_secrets.opened(
                self._sealer, job.tenant_id, self._kinds[job.job_type], job.parameters
            ),
            source=job_source(job),
            requested_by=job.created_by,
            checkpoint=job.checkpoint,
            work_dir=work_dir,
        )

    def _progress(
        self, job: MigrationJob, total: int, outcome: BatchOutcome, failed: list[FailedItem]
    ) -> None:
        failures = _failed_count(outcome.summary, job.failed + len(failed))
        job.progress(
            self.owner,
            total=total,
            processed=outcome.processed,
            successful=outcome.processed - failures,
            failed=failures,
            checkpoint=dict(outcome.checkpoint),
            summary=dict(outcome.summary),
            failures=[
                {"item": f.item, "error": f.error, "recommendation": f.recommendation}
                for f in failed
            ],
            meta=self._meta(job),
        )

    def _meta(self, job: MigrationJob) -> EventMeta:
        return EventMeta(job.tenant_id, self._actor, self._settings.constitutional_hash)

    def renew(self, job: MigrationJob) -> None:
        job.renew(self.owner, self._settings.lease_seconds, self._meta(job))

    @property
    def lease_seconds(self) -> float:
        return self._settings.lease_seconds


# An absolute path in an error (where the service keeps uploads and work files) shown as its last
# part only.
_SERVER_PATH = re.compile(r"(?:/[^/\s:'\"]+)+/([^/\s:'\"]+)")


def _failed_count(summary: Mapping[str, Any], fallback: int) -> int:
    """The kind's cumulative count of failed items: `failed_items` in its summary (a kind that
    keeps no such count is counted by the failures it reports, which a batch run again after a
    crash would count twice)."""
    value = summary.get("failed_items", fallback)
    return int(value) if isinstance(value, int) else fallback


class _Held:
    """A job this worker holds: every write to it (progress, lease, outcome) goes through
    `record`, one at a time, and a write that meets a newer version reloads the job to see
    whether it is still held (JobLost if not)."""

    def __init__(self, runner: MigrationRunner, job: MigrationJob) -> None:
        self.runner = runner
        self.job = job
        self.done = threading.Event()
        self._lock = threading.Lock()
        self.lost = False

    def record(self, change: Callable[[MigrationJob], None]) -> None:
        with self._lock:
            if self.lost:
                raise JobLost
            for _ in range(3):
                try:
                    change(self.job)
                    self.runner._app.save_for(self.job.tenant_id, self.job)
                except (ConcurrentModification, InvalidStateTransition):
                    self.job = self.runner._app.load(self.job.tenant_id, self.job.id, MigrationJob)
                    if not self.job.holds(self.runner.owner):
                        self.lost = True
                        raise JobLost from None
                else:
                    return
            raise JobLost

    def heartbeat(self, stop: threading.Event) -> None:
        interval = self.runner.lease_seconds / 3
        while not self.done.wait(interval) and not stop.is_set():
            try:
                self.record(self.runner.renew)
            except JobLost:
                return
            except Exception:  # noqa: BLE001 - a lost connection: try again next time
                log.warning("migration job %s: the lease was not renewed", self.job.id)
