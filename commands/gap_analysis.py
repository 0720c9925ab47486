"""The `gap_analysis` kind of migration job: the gap catalogue over a tenant's registered
policies, batch by batch, each run recorded so that gaps close over time.

The run's id is the job's id. Each batch records the gaps of its policies under the run
(idempotently: a batch run twice records the same rows) and returns the cumulative tally, which
travels in the checkpoint; a re-claimed job continues from the checkpoint's last policy key with
the checkpoint's tally, so the counts stay exact. Once every policy is done the run completes:
the tenant's current gaps take its findings, gaps it no longer found are marked fixed, and each
critical gap it opened is reported as an alert.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol
from uuid import UUID

from commands.migration_kinds import BatchOutcome, JobContext, JobSource
from domain.errors import ValidationFailed
from domain.policy.gaps.catalogue import GapSeverity
from domain.policy.gaps.tracking import (
    GapScope,
    RegisteredVersion,
    RunCounts,
    RunTally,
    SourceModels,
    TrackedGap,
    version_gaps,
)

KIND = "gap_analysis"
DEFAULT_BATCH = 100
MAX_BATCH = 1000
_PARAMETERS = ("scope", "batch_size")


class GapLedger(Protocol):
    """Port: the tenant's registered policies, and the record of gap runs."""

    def count_versions(self, tenant_id: UUID, scope: GapScope) -> int: ...

    def versions(
        self, tenant_id: UUID, scope: GapScope, after: str, limit: int
    ) -> list[RegisteredVersion]:
        """The next `limit` versions in the scope, by policy key, after the key `after`."""
        ...

    def begin_run(
        self, tenant_id: UUID, run_id: UUID, scope: GapScope, total: int, requested_by: str
    ) -> None:
        """Record the run (a second call for the same run changes nothing)."""
        ...

    def record(
        self, tenant_id: UUID, run_id: UUID, gaps: Sequence[TrackedGap], tally: RunTally
    ) -> None:
        """Add the gaps of a batch to the run (those it has already are kept as they are)."""
        ...

    def complete_run(self, tenant_id: UUID, run_id: UUID) -> RunCounts:
        """Close the run: the tenant's gaps take its findings, the gaps it did not find are
        fixed. Completing a completed run changes nothing and returns its counts."""
        ...

    def opened_gaps(self, tenant_id: UUID, run_id: UUID, severity: GapSeverity) -> list[TrackedGap]:
        """The gaps of `severity` that the completed run opened (first seen, or regressed)."""
        ...

    def run_counts(self, tenant_id: UUID, run_id: UUID) -> RunCounts | None: ...


class GapAlerts(Protocol):
    """Port: where a run reports each critical gap it opened (the audit log, so the sinks raise
    the `policy_gap_critical` alert). Reporting a gap twice for one run records it once."""

    def gaps_opened(
        self, tenant_id: UUID, run_id: UUID, requested_by: str, gaps: Sequence[TrackedGap]
    ) -> None: ...


def _batch_size(value: object, problems: list[dict[str, Any]]) -> int:
    if value is None:
        return DEFAULT_BATCH
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_BATCH:
        problems.append({"field": "parameters.batch_size", "message": f"an integer 1..{MAX_BATCH}"})
        return DEFAULT_BATCH
    return value


class GapAnalysisKind:
    name = KIND

    def __init__(self, ledger: GapLedger, alerts: GapAlerts) -> None:
        self._ledger = ledger
        self._alerts = alerts

    def validate(self, parameters: Mapping[str, Any], source: JobSource | None) -> dict[str, Any]:
        problems: list[dict[str, Any]] = [
            {"field": f"parameters.{name}", "message": "unknown parameter"}
            for name in sorted(set(parameters) - set(_PARAMETERS))
        ]
        scope = parameters.get("scope", GapScope.ACTIVE.value)
        if scope not in tuple(GapScope):
            choices = ", ".join(s.value for s in GapScope)
            problems.append({"field": "parameters.scope", "message": f"one of {choices}"})
        batch_size = _batch_size(parameters.get("batch_size"), problems)
        if source is not None:
            problems.append(
                {"field": "source", "message": "a gap analysis reads the registry: no source"}
            )
        if problems:
            raise ValidationFailed.listing(problems)
        return {"scope": str(scope), "batch_size": batch_size}

    def open(self, job: JobContext) -> GapCursor:
        scope = GapScope(job.parameters.get("scope", GapScope.ACTIVE.value))
        total = self._ledger.count_versions(job.tenant_id, scope)
        self._ledger.begin_run(job.tenant_id, job.job_id, scope, total, job.requested_by)
        return GapCursor(self._ledger, self._alerts, job, scope, total)

    def report(self, job: JobContext, summary: Mapping[str, Any]) -> Mapping[str, Any]:
        counts = self._ledger.run_counts(job.tenant_id, job.job_id)
        return {
            **RunTally.from_json(summary).as_json(),
            "scope": job.parameters.get("scope", GapScope.ACTIVE.value),
            "gaps": counts.as_json() if counts is not None else None,
        }


class GapCursor:
    def __init__(
        self, ledger: GapLedger, alerts: GapAlerts, job: JobContext, scope: GapScope, total: int
    ) -> None:
        self._ledger = ledger
        self._alerts = alerts
        self._job = job
        self._scope = scope
        self.total = total
        checkpoint = job.checkpoint or {}
        self._after = str(checkpoint.get("after", ""))
        self._tally = RunTally.from_json(checkpoint.get("tally"))
        self._batch = int(job.parameters.get("batch_size", DEFAULT_BATCH))
        self._completed = False
        self._models = SourceModels()

    def next_batch(self) -> BatchOutcome | None:
        if self._completed:
            return None
        tenant_id, run_id = self._job.tenant_id, self._job.job_id
        versions = self._ledger.versions(tenant_id, self._scope, self._after, self._batch)
        if not versions:
            self._ledger.complete_run(tenant_id, run_id)
            critical = self._ledger.opened_gaps(tenant_id, run_id, GapSeverity.CRITICAL)
            self._alerts.gaps_opened(tenant_id, run_id, self._job.requested_by, critical)
            self._completed = True
            return None
        gaps = [g for v in versions for g in version_gaps(tenant_id, v, self._models)]
        self._tally = self._tally.add(len(versions), gaps)
        self._ledger.record(tenant_id, run_id, gaps, self._tally)
        self._after = versions[-1].policy_key
        return BatchOutcome(
            processed=self._tally.policies_analysed,
            summary=self._tally.as_json(),
            checkpoint={"after": self._after, "tally": self._tally.as_json()},
        )

    def close(self) -> None:
        """Nothing is held between batches."""
