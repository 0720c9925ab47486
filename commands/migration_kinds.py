"""The port between the migration-job runner and the work each kind of job does.

The runner (claims, leases, progress events, cancellation, per-tenant caps) knows nothing of
what a job does; each kind (`policy_conversion`, `gap_analysis`, `decision_log_import`,
`shadow_mode`) implements `JobKind`. The runner asks the kind to check a request before the job
is created (`validate`), then, each time a worker claims the job (the first time, or after a
crashed worker's lease expired), to `open` a cursor at the job's last checkpoint and to run it
batch by batch.

Every `BatchOutcome` is cumulative: `processed` and `summary` count the whole job so far, not the
batch, so a batch that is run twice (the worker died after doing it but before its progress was
recorded) cannot count twice. A kind whose effects must be atomic with its checkpoint (rows
copied into a table) keeps that checkpoint itself, in the transaction of the effects, and reads it
back in `open`; a kind whose effects are idempotent may rely on `JobContext.checkpoint`, the
checkpoint of the last progress the runner recorded.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol
from uuid import UUID


@dataclass(frozen=True)
class JobSource:
    """Where a job's input is: an uploaded file or archive stored under the data directory, or a
    server-side path inside a directory the operator allows (already checked by the runner)."""

    path: Path
    filename: str  # as uploaded, or the path's name
    media_type: str | None = None


@dataclass(frozen=True)
class JobContext:
    tenant_id: UUID
    job_id: UUID
    kind: str
    parameters: Mapping[str, Any]  # as returned by the kind's `validate`
    source: JobSource | None
    requested_by: str  # the principal who started the job
    checkpoint: Mapping[str, Any] | None  # of the last recorded progress; None on a first run
    work_dir: Path  # a directory of this job's own, kept across claims, for scratch files


@dataclass(frozen=True)
class FailedItem:
    """One item that failed (a policy, a CSV row ...), with what to do about it."""

    item: str  # e.g. "policies/retention.json" or "row 17"
    error: str
    recommendation: str = ""


@dataclass(frozen=True)
class BatchOutcome:
    processed: int  # items done so far in the whole job (cumulative)
    summary: Mapping[str, Any]  # counts so far in the whole job (cumulative), JSON-serialisable
    checkpoint: Mapping[str, Any]  # JSON-serialisable; handed back in JobContext on a re-claim
    failed: tuple[FailedItem, ...] = field(default=())  # new failures of this batch only


class JobCursor(Protocol):
    total: int  # items the whole job has (known once opened; 0 for an empty source)

    def next_batch(self) -> BatchOutcome | None:
        """Do the next batch and say where the job stands; None once every item is done."""
        ...

    def close(self) -> None: ...


class JobKind(Protocol):
    name: str  # the `kind` of the jobs it runs, e.g. "decision_log_import"

    def validate(self, parameters: Mapping[str, Any], source: JobSource | None) -> dict[str, Any]:
        """The parameters to keep, normalised; raises `ValidationFailed` naming every bad field
        (a missing or unreadable source is a bad field too)."""
        ...

    def open(self, job: JobContext) -> JobCursor:
        """A cursor at the job's last checkpoint (the start, on a first run)."""
        ...

    def report(self, job: JobContext, summary: Mapping[str, Any]) -> Mapping[str, Any]:
        """The `result_summary` of a finished job, from its cumulative summary."""
        ...
