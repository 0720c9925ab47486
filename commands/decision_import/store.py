"""Port: where imported decisions and an import's progress are kept (infra.postgres.
decision_import_store). A batch's rows and the job's progress commit in one transaction, so a
job resumes exactly where its last committed batch ended. A batch's rows are encoded for the
store (`encoded`, which touches no connection) before its transaction begins, so the next batch
can be prepared in another thread while this one is written."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from contextlib import AbstractContextManager
from typing import Any, Protocol
from uuid import UUID

from domain.decision_import.record import ImportedDecision


class ImportBatch(Protocol):
    """One batch's transaction, serialised with the tenant's other imports."""

    def stage(self, chunks: Iterable[bytes]) -> None:
        """Send the batch's rows (each key once, as chunks from `encoded`, put in order by
        `in_log_order`) on their way to the decision log."""
        ...

    def settle(self) -> Mapping[str, str]:
        """Add the staged rows to the decision log, marked imported by this job, except those
        whose key the tenant has imported before: those are returned, as
        `dedup_key -> content_sha256` of the decision already kept."""
        ...

    def save_progress(self, rows_through: int, summary: Mapping[str, Any]) -> None:
        """The job's progress, kept when the batch commits."""
        ...


class ImportedDecisionStore(Protocol):
    def encoded(self, tenant_id: UUID, rows: Sequence[ImportedDecision]) -> bytes:
        """The rows as `ImportBatch.stage` sends them; safe in any thread (no connection)."""
        ...

    def in_log_order(self, chunks: Sequence[bytes]) -> list[bytes]:
        """A batch's chunks from `encoded`, their rows put in the order the decision log keeps
        them (the insert then walks its primary key from one end to the other); safe in any
        thread (no connection)."""
        ...

    def progress(self, tenant_id: UUID, job_id: UUID) -> tuple[int, dict[str, Any]] | None:
        """The source rows consumed and the cumulative summary of the job's last committed
        batch; None before its first."""
        ...

    def batch(
        self, tenant_id: UUID, job_id: UUID, rows_from: int
    ) -> AbstractContextManager[ImportBatch]:
        """A transaction that commits when the block ends without an error, for the batch that
        starts after `rows_from` source rows; `ConcurrentModification` if the job's progress
        is elsewhere (another worker ran the batch)."""
        ...

    def close(self) -> None: ...
