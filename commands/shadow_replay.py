"""`shadow_mode` jobs: the legacy decisions imported into the decision log, replayed through
the shadow comparison batch by batch, counted in the tenant's shadow metrics and alerted like
live ones (the rollback rule watches live traffic only: a replay routes nothing).

The counts of a batch and the job's checkpoint are written in one transaction (the metrics
store's `add` with the progress), and `open` resumes from that checkpoint, so a batch run twice
(a worker died after it) never counts twice; alerts are idempotent by their id.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, Protocol
from uuid import UUID

from commands.migration_kinds import BatchOutcome, FailedItem, JobContext, JobSource
from commands.shadow import RolloutState, ShadowService, minute_of
from domain.errors import ValidationFailed
from domain.events import Actor
from domain.shadow.comparison import Agreement, ImportedDecision
from domain.shadow.metrics import RollbackRule, Tally

DEFAULT_BATCH = 1000
MAX_BATCH = 10_000
FAILED_ITEMS_PER_BATCH = 20  # Rego errors listed (with a recommendation) per batch at most
_INFORMATIONAL = frozenset({"migration_type", "shadow_mode_days"})  # kept, not acted on


class ImportedDecisions(Protocol):
    """Port: the imported legacy decisions of a tenant (infra.postgres.imported_decisions)."""

    def count(self, tenant_id: UUID, import_job_id: UUID | None) -> int: ...

    def page(
        self,
        tenant_id: UUID,
        import_job_id: UUID | None,
        after: tuple[datetime, UUID] | None,
        limit: int,
    ) -> list[ImportedDecision]: ...


class ReplayProgressFactory(Protocol):
    def __call__(
        self,
        job_id: UUID,
        checkpoint: Mapping[str, Any],
        processed: int,
        summary: Mapping[str, Any],
    ) -> Any: ...


class ShadowReplayKind:
    name = "shadow_mode"

    def __init__(
        self,
        shadow: ShadowService,
        imported: ImportedDecisions,
        progress: ReplayProgressFactory,
    ) -> None:
        self.shadow = shadow
        self.imported = imported
        self.progress_of = progress

    def validate(self, parameters: Mapping[str, Any], source: JobSource | None) -> dict[str, Any]:
        problems: list[dict[str, str]] = []
        known = {"policy_id", "batch_size", "import_job_id", *_INFORMATIONAL}
        problems += [
            {"field": f"parameters.{k}", "message": "unknown parameter"}
            for k in sorted(set(parameters) - known)
        ]
        if source is not None:
            problems.append(
                {"field": "source", "message": "shadow_mode replays imported decisions: no file"}
            )
        policy = parameters.get("policy_id")
        if policy is not None and (not isinstance(policy, str) or not 1 <= len(policy) <= 255):
            problems.append({"field": "parameters.policy_id", "message": "1 to 255 characters"})
        size = parameters.get("batch_size", DEFAULT_BATCH)
        if isinstance(size, bool) or not isinstance(size, int) or not 1 <= size <= MAX_BATCH:
            problems.append(
                {"field": "parameters.batch_size", "message": f"an integer 1..{MAX_BATCH}"}
            )
        job = parameters.get("import_job_id")
        if job is not None:
            try:
                job = str(UUID(str(job)))
            except ValueError:
                problems.append({"field": "parameters.import_job_id", "message": "a UUID"})
        if problems:
            raise ValidationFailed.listing(problems)
        kept = {k: parameters[k] for k in _INFORMATIONAL & set(parameters)}
        return {**kept, "policy_id": policy, "batch_size": size, "import_job_id": job}

    def open(self, job: JobContext) -> ReplayCursor:
        state = self.shadow.state(job.tenant_id, fresh=True)
        policy = job.parameters.get("policy_id") or (state.policy_key if state else None)
        if not policy:
            raise ValidationFailed.field(
                "parameters.policy_id",
                "is required while shadow mode is not configured for the tenant",
            )
        replay_state = RolloutState(
            policy_key=str(policy),
            percentage=state.percentage if state else 0,
            epoch=state.epoch if state else 0,
            rule=state.rule if state else RollbackRule(),
            pending_target=None,
            requested_by=None,
        )
        import_job = job.parameters.get("import_job_id")
        return ReplayCursor(
            kind=self,
            job=job,
            state=replay_state,
            import_job_id=UUID(import_job) if import_job else None,
            batch_size=int(job.parameters.get("batch_size") or DEFAULT_BATCH),
        )

    def report(self, job: JobContext, summary: Mapping[str, Any]) -> Mapping[str, Any]:
        series = self.shadow.metrics.series(job.tenant_id, points=1000, resolution="hour")
        return {
            **summary,
            "agreement_series": [[at.isoformat(), round(rate, 6)] for at, rate, _ in series],
        }


class ReplayCursor:
    def __init__(
        self,
        *,
        kind: ShadowReplayKind,
        job: JobContext,
        state: RolloutState,
        import_job_id: UUID | None,
        batch_size: int,
    ) -> None:
        self._kind = kind
        self._job = job
        self._state = state
        self._import_job_id = import_job_id
        self._batch_size = batch_size
        self._actor = Actor(sub=job.requested_by, auth_method="job", actor_type="user")
        tenant = job.tenant_id
        self.total = kind.imported.count(tenant, import_job_id)
        done = kind.shadow.metrics.progress(tenant, job.job_id)
        self._tally = Tally.from_row(done.summary) if done else Tally()
        self._processed = done.processed if done else 0
        after = done.checkpoint.get("after") if done else None
        self._after = (datetime.fromisoformat(after[0]), UUID(after[1])) if after else None

    def next_batch(self) -> BatchOutcome | None:
        tenant = self._job.tenant_id
        rows = self._kind.imported.page(tenant, self._import_job_id, self._after, self._batch_size)
        if not rows:
            return None
        shadow = self._kind.shadow
        decisions = [row.legacy() for row in rows]
        comparisons = [
            shadow.evaluate_imported(tenant, self._state.policy_key, d) for d in decisions
        ]
        shadow.alert(tenant, self._state, decisions, comparisons, self._actor)
        minutes: dict[datetime, Tally] = {}
        failed: list[FailedItem] = []
        for row, legacy, comparison in zip(rows, decisions, comparisons, strict=True):
            tally = minutes.setdefault(minute_of(row.decided_at), Tally())
            tally.add(comparison.kind, legacy.latency_ms, comparison.rego_latency_ms)
            if comparison.kind is Agreement.REGO_ERROR and len(failed) < FAILED_ITEMS_PER_BATCH:
                failed.append(
                    FailedItem(
                        item=f"decision {row.decision_id}",
                        error=comparison.error or "Rego could not decide",
                        recommendation="fix the policy for this input (or the input mapping) "
                        "before routing traffic to Rego",
                    )
                )
        job_tally = Tally()
        job_tally.merge(self._tally)
        for tally in minutes.values():
            job_tally.merge(tally)
        last = rows[-1]
        checkpoint = {"after": [last.decided_at.isoformat(), str(last.decision_id)]}
        processed = self._processed + len(rows)
        shadow.metrics.add(
            tenant,
            self._state.epoch,
            minutes,
            self._kind.progress_of(self._job.job_id, checkpoint, processed, job_tally.as_row()),
        )
        self._tally, self._processed = job_tally, processed
        self._after = (last.decided_at, last.decision_id)
        return BatchOutcome(
            processed=processed,
            # Rego errors are the failed items (only the first of each batch are listed)
            summary={**job_tally.summary(), "failed_items": job_tally.counts[Agreement.REGO_ERROR]},
            checkpoint=checkpoint,
            failed=tuple(failed),
        )

    def close(self) -> None:
        """Nothing to release: every batch reads and writes in its own transaction."""
