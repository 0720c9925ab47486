"""Migration-job commands: start a job (its kind checks the request first; 202 in the API) and
cancel one. The work itself is the runner's (`commands/migration_runner.py`).

The kinds a deployment runs are a mapping `name -> JobKind` built by the composition root; a
`job_type` that is not among them is refused naming the known ones.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

from commands import job_secrets
from commands.application import GovernanceApplication
from commands.authorization import Permission, authorize, job_permission
from commands.context import CommandContext
from commands.migration_kinds import JobKind, JobSource
from commands.migration_sources import JobSources, Upload
from commands.preamble import CommandPreamble
from domain.errors import ConcurrentModification, ValidationFailed
from domain.migration.job import MigrationJob
from domain.secrets import SecretSealer

CANCEL_ATTEMPTS = 5  # a cancel that meets a worker's write reloads the job and tries again


@dataclass(frozen=True)
class StartJob:
    job_type: str
    source_system: str
    source_config: dict[str, Any] = field(default_factory=dict)
    upload: Upload | None = None


class MigrationJobs:
    def __init__(
        self,
        app: GovernanceApplication,
        constitutional_hash: str,
        kinds: Mapping[str, JobKind],
        sources: JobSources,
        sealer: SecretSealer | None = None,
    ) -> None:
        self._app = app
        self._preamble = CommandPreamble(app, constitutional_hash)
        self.kinds = kinds
        self.sources = sources
        self.sealer = sealer  # seals the kinds' secret parameters (commands/job_secrets.py)

    def start(self, ctx: CommandContext, tenant_id: UUID, command: StartJob) -> MigrationJob:
        """Check the request (every bad field at once), store its upload, record a pending job."""
        meta = self._preamble.begin(
            ctx, job_permission(command.job_type), tenant_id, "start_migration_job", tenant_id
        )
        job_id = uuid4()
        problems: list[dict[str, Any]] = []
        kind = self.kinds.get(command.job_type)
        if kind is None:
            known = sorted(self.kinds)
            problems.append(
                {
                    "field": "job_type",
                    "message": f"must be one of {', '.join(known)}",
                    "known": known,
                }
            )
        if not command.source_system.strip() or len(command.source_system) > 255:
            problems.append({"field": "source_system", "message": "must be 1 to 255 characters"})
        source: JobSource | None = None
        try:
            source = self.sources.resolve(job_id, command.source_config, command.upload)
        except ValidationFailed as invalid:
            problems += invalid.details["fields"]
        parameters: dict[str, Any] = {}
        if kind is not None:
            try:
                parameters = kind.validate(command.source_config, source)
            except ValidationFailed as invalid:
                problems += [_in_source_config(p) for p in invalid.details["fields"]]
        if problems:
            self.sources.discard(job_id)
            raise ValidationFailed.listing(problems)
        assert kind is not None  # else a problem was reported
        try:
            parameters, source_config = job_secrets.seal(
                self.sealer, tenant_id, kind, parameters, command.source_config
            )
            job = MigrationJob.create(
                job_id=job_id,
                job_type=command.job_type,
                source_system=command.source_system,
                source_config=source_config,
                parameters=parameters,
                source=_source_json(source),
                meta=meta,
            )
            self._app.save_for(tenant_id, job)
        except BaseException:
            self.sources.discard(job_id)  # the job was not created: nor is its upload kept
            raise
        return job

    def cancel(self, ctx: CommandContext, tenant_id: UUID, job_id: UUID) -> MigrationJob:
        """Cancel a pending or running job (a running one stops between batches); a terminal
        job is InvalidStateTransition."""
        authorize(ctx.principal, Permission.MIGRATION_READ, tenant_id)
        job = self._app.load(tenant_id, job_id, MigrationJob)
        meta = self._preamble.begin(
            ctx, job_permission(job.job_type), tenant_id, "cancel_migration_job", tenant_id
        )
        for attempt in range(1, CANCEL_ATTEMPTS + 1):
            job.cancel(meta)
            try:
                self._app.save_for(tenant_id, job)
            except ConcurrentModification:
                if attempt == CANCEL_ATTEMPTS:
                    raise
                job = self._app.load(tenant_id, job_id, MigrationJob)
            else:
                return job
        raise AssertionError("unreachable")  # pragma: no cover

    def job(self, tenant_id: UUID, job_id: UUID) -> MigrationJob:
        """The job as last recorded (from its events; the caller has authorized the read)."""
        return self._app.load(tenant_id, job_id, MigrationJob)


def _in_source_config(problem: dict[str, Any]) -> dict[str, Any]:
    """A kind's problem with one of its parameters, named as the request's field
    (`source_config.<name>`); a problem with the job's input (`source`) keeps its name."""
    name = str(problem.get("field", ""))
    if name == "source" or name.startswith("source_config."):
        return problem
    return {**problem, "field": f"source_config.{name.removeprefix('parameters.')}"}


def _source_json(source: JobSource | None) -> dict[str, Any] | None:
    if source is None:
        return None
    return {"path": str(source.path), "filename": source.filename, "media_type": source.media_type}


def job_source(job: MigrationJob) -> JobSource | None:
    if job.source is None:
        return None
    return JobSource(
        Path(job.source["path"]), str(job.source["filename"]), job.source.get("media_type")
    )
