"""The MigrationJob aggregate: one background job of a tenant (a policy conversion, a decision-log
import, a gap analysis, a shadow-mode run) and its life.

pending -> running -> completed | failed; pending | running -> cancelled; the terminal states are
final. A worker claims a pending job (or a running one whose lease has expired: its worker died)
with a `Claimed` event: two workers that claim at once write at the same aggregate version, so the
event store keeps one claim and refuses the other. The holder renews its lease, records cumulative
progress with the checkpoint to resume from, and completes or fails the job; every call of a worker
names itself, and one that has lost its lease is refused.

Guards run in the public methods; the event methods only change state, so a replay rebuilds the
same job. A lease's expiry is its event's own timestamp plus the lease's length.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from domain.errors import InvalidStateTransition, ValidationFailed
from domain.events import EventMeta


class JobStatus(StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"


TERMINAL = frozenset({JobStatus.COMPLETED, JobStatus.FAILED, JobStatus.CANCELLED})
MAX_ERROR_DETAILS = 4000
REDACTED = "***REDACTED***"


class MigrationJob(Aggregate):
    class Event(Aggregate.Event):
        meta: dict[str, Any]

    class Created(Event, Aggregate.Created):
        job_type: str
        source_system: str
        source_config: dict[str, Any]
        parameters: dict[str, Any]
        source: dict[str, Any] | None  # {path, filename, media_type} or None

    class Claimed(Event):
        """Applied by hand: the lease runs from the event's own timestamp."""

        owner: str
        lease_seconds: float

        def apply(self, aggregate: MigrationJob) -> None:
            aggregate.status = JobStatus.RUNNING
            aggregate.lease_owner = self.owner
            aggregate.lease_expires_at = self.timestamp + timedelta(seconds=self.lease_seconds)
            aggregate.claims += 1
            if aggregate.started_at is None:
                aggregate.started_at = self.timestamp

    class LeaseRenewed(Event):
        owner: str
        lease_seconds: float

        def apply(self, aggregate: MigrationJob) -> None:
            aggregate.lease_expires_at = self.timestamp + timedelta(seconds=self.lease_seconds)

    class Progressed(Event):
        total: int
        processed: int
        successful: int
        failed: int
        checkpoint: dict[str, Any]
        summary: dict[str, Any]
        failures: list[dict[str, str]]  # the items that failed since the last progress

    class Completed(Event):
        total: int
        processed: int
        successful: int
        failed: int
        result_summary: dict[str, Any]

    class Failed(Event):
        error_details: str

    class Cancelled(Event):
        pass

    @classmethod
    def create(
        cls,
        *,
        job_id: UUID,
        job_type: str,
        source_system: str,
        source_config: dict[str, Any],
        parameters: dict[str, Any],
        source: dict[str, Any] | None,
        meta: EventMeta,
    ) -> MigrationJob:
        if not source_system.strip() or len(source_system) > 255:
            raise ValidationFailed.field("source_system", "must be 1 to 255 characters")
        return cls(
            id=job_id,
            job_type=job_type,
            source_system=source_system,
            source_config=redacted(source_config),
            parameters=parameters,
            source=source,
            meta=meta.as_dict(),
        )

    @event(Created)
    def __init__(
        self,
        id: UUID,
        job_type: str,
        source_system: str,
        source_config: dict[str, Any],
        parameters: dict[str, Any],
        source: dict[str, Any] | None,
        meta: dict[str, Any],
    ) -> None:
        del id
        self.tenant_id = UUID(str(meta["tenant_id"]))
        self.job_type = job_type
        self.source_system = source_system
        self.source_config = source_config
        self.parameters = parameters
        self.source = source
        self.created_by = str(meta["actor"]["sub"])
        self.status = JobStatus.PENDING
        self.lease_owner: str | None = None
        self.lease_expires_at: datetime | None = None
        self.claims = 0
        self.started_at: datetime | None = None
        self.total = 0
        self.processed = 0
        self.successful = 0
        self.failed = 0
        self.checkpoint: dict[str, Any] | None = None
        self.summary: dict[str, Any] = {}
        self.result_summary: dict[str, Any] | None = None
        self.error_details: str | None = None

    # --- claims and leases --------------------------------------------------------------------

    def claimable(self, now: datetime) -> bool:
        """Pending, or running on a lease that has expired."""
        if self.status is JobStatus.PENDING:
            return True
        return (
            self.status is JobStatus.RUNNING
            and self.lease_expires_at is not None
            and self.lease_expires_at <= now
        )

    def claim(self, owner: str, now: datetime, lease_seconds: float, meta: EventMeta) -> None:
        if not self.claimable(now):
            raise InvalidStateTransition(
                f"cannot claim a {self.status.value} job"
                + (" whose lease holds" if self.status is JobStatus.RUNNING else ""),
                self._state(),
            )
        self.trigger_event(
            self.Claimed, owner=owner, lease_seconds=float(lease_seconds), meta=meta.as_dict()
        )

    def renew(self, owner: str, lease_seconds: float, meta: EventMeta) -> None:
        self._require_holder(owner, "renew the lease of")
        self.trigger_event(
            self.LeaseRenewed, owner=owner, lease_seconds=float(lease_seconds), meta=meta.as_dict()
        )

    # --- progress and outcome -----------------------------------------------------------------

    def progress(
        self,
        owner: str,
        *,
        total: int,
        processed: int,
        successful: int,
        failed: int,
        checkpoint: dict[str, Any],
        summary: dict[str, Any],
        failures: list[dict[str, str]],
        meta: EventMeta,
    ) -> None:
        self._require_holder(owner, "record progress of")
        self._progressed(
            total=total,
            processed=processed,
            successful=successful,
            failed=failed,
            checkpoint=checkpoint,
            summary=summary,
            failures=failures,
            meta=meta.as_dict(),
        )

    @event(Progressed)
    def _progressed(
        self,
        total: int,
        processed: int,
        successful: int,
        failed: int,
        checkpoint: dict[str, Any],
        summary: dict[str, Any],
        failures: list[dict[str, str]],
        meta: dict[str, Any],
    ) -> None:
        del failures, meta
        self.total, self.processed = total, processed
        self.successful, self.failed = successful, failed
        self.checkpoint = checkpoint
        self.summary = summary

    def complete(
        self,
        owner: str,
        *,
        counts: tuple[int, int, int, int],
        result_summary: dict[str, Any],
        meta: EventMeta,
    ) -> None:
        """`counts`: total, processed, successful, failed."""
        self._require_holder(owner, "complete")
        total, processed, successful, failed = counts
        self._completed(
            total=total,
            processed=processed,
            successful=successful,
            failed=failed,
            result_summary=result_summary,
            meta=meta.as_dict(),
        )

    @event(Completed)
    def _completed(
        self,
        total: int,
        processed: int,
        successful: int,
        failed: int,
        result_summary: dict[str, Any],
        meta: dict[str, Any],
    ) -> None:
        del meta
        self.total, self.processed = total, processed
        self.successful, self.failed = successful, failed
        self.result_summary = result_summary
        self.status = JobStatus.COMPLETED
        self.lease_owner = None

    def fail(self, owner: str, error_details: str, meta: EventMeta) -> None:
        self._require_holder(owner, "fail")
        self._failed(error_details=error_details[:MAX_ERROR_DETAILS], meta=meta.as_dict())

    @event(Failed)
    def _failed(self, error_details: str, meta: dict[str, Any]) -> None:
        del meta
        self.error_details = error_details
        self.status = JobStatus.FAILED
        self.lease_owner = None

    def cancel(self, meta: EventMeta) -> None:
        if self.status not in (JobStatus.PENDING, JobStatus.RUNNING):
            raise InvalidStateTransition(f"cannot cancel a {self.status.value} job", self._state())
        self._cancelled(meta=meta.as_dict())

    @event(Cancelled)
    def _cancelled(self, meta: dict[str, Any]) -> None:
        del meta
        self.status = JobStatus.CANCELLED
        self.lease_owner = None

    # --- guards -------------------------------------------------------------------------------

    def holds(self, owner: str) -> bool:
        return self.status is JobStatus.RUNNING and self.lease_owner == owner

    def _require_holder(self, owner: str, action: str) -> None:
        if not self.holds(owner):
            raise InvalidStateTransition(
                f"cannot {action} a job this worker does not hold", self._state()
            )

    def _state(self) -> dict[str, Any]:
        return {"job_id": str(self.id), "job_status": self.status.value}


_SECRET_KEY = re.compile(r"pass(word)?|secret|token|credential|api_?key|private", re.I)
_URL_PASSWORD = re.compile(r"(?<=://)([^:/@\s]+):[^@/\s]+@")


def redacted(config: Any) -> Any:
    """`config` as it may be recorded and shown: values under secret-looking keys, and the
    password of a URL's user information, replaced by ***REDACTED*** (a kind that needs a secret
    to run keeps it sealed in its own parameters)."""
    if isinstance(config, dict):
        return {
            key: REDACTED if _SECRET_KEY.search(str(key)) else redacted(value)
            for key, value in config.items()
        }
    if isinstance(config, list):
        return [redacted(value) for value in config]
    if isinstance(config, str):
        return _URL_PASSWORD.sub(rf"\1:{REDACTED}@", config)
    return config
