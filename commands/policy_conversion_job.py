"""The `policy_conversion` kind of migration job: legacy policy files (an uploaded file or
archive, or a server-side path) converted and gated with the toolkit, and every converted policy
written into the tenant's registry as a new version with its conversion report.

An item is a source file. `source_config`: `format` (auto, json, yaml, dsl, iam; default auto),
`validation_mode` (strict: only proven conversions are written; lenient: partial and unproven
ones too, flagged in their report; default strict), `activate` (activate each version written,
proven conversions only; default false), `batch_size` (files per batch, default 1000).

Writing is idempotent (a policy whose latest version already has the same Rego and source gets
none), so the kind relies on the runner's checkpoint: the index of the next file and the counts so
far. A batch run again after a crash finds its versions written and counts them once.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from commands.application import GovernanceApplication
from commands.migration_kinds import BatchOutcome, FailedItem, JobContext, JobCursor, JobSource
from commands.policies import ConvertedSource, record_conversions
from commands.policy_conversion import (
    BatchTooLarge,
    ConversionPool,
    EngineFactory,
    PendingConversion,
    SourceNotFound,
    SourceText,
    SourceUnreadable,
    collect_sources,
    read_sources,
    run_conversion,
)
from domain.errors import ValidationFailed
from domain.events import Actor, EventMeta
from domain.policy.conversion import ConversionSettings, ConversionStatus, PolicyResult
from domain.policy.gate import RegoEngine
from domain.policy.limits import DEFAULT_LIMITS, PolicyLimits
from domain.policy.sources import SourceFormat

KIND = "policy_conversion"
FORMATS = ("auto", "json", "yaml", "dsl", "iam")
MODES = ("strict", "lenient")
DEFAULT_BATCH = 1000
MAX_BATCH = 10_000
_COUNTS = (
    "files",
    "policies",
    "converted",
    "unproven",
    "partial",
    "failed",
    "written",
    "new_versions",
    "unchanged_versions",
    "activated",
    "warnings",
    "errors",
    "compliant",
    "rules_converted",
    "rules_total",
    "failed_items",
)


class PolicyConversionKind:
    name = KIND

    def __init__(
        self,
        app: GovernanceApplication,
        constitutional_hash: str,
        engine_factory: EngineFactory,
        *,
        processes: int = 1,
        limits: PolicyLimits = DEFAULT_LIMITS,
    ) -> None:
        self._app = app
        self._hash = constitutional_hash
        self._engine_factory = engine_factory
        self._processes = processes
        self._limits = limits

    def validate(self, parameters: Mapping[str, Any], source: JobSource | None) -> dict[str, Any]:
        problems: list[dict[str, Any]] = []
        fmt = parameters.get("format", "auto")
        if fmt not in FORMATS:
            problems.append(_field("format", f"must be one of {', '.join(FORMATS)}"))
        mode = parameters.get("validation_mode", "strict")
        if mode not in MODES:
            problems.append(_field("validation_mode", f"must be one of {', '.join(MODES)}"))
        activate = parameters.get("activate", False)
        if not isinstance(activate, bool):
            problems.append(_field("activate", "must be true or false"))
        batch = parameters.get("batch_size", DEFAULT_BATCH)
        if isinstance(batch, bool) or not isinstance(batch, int) or not 1 <= batch <= MAX_BATCH:
            problems.append(_field("batch_size", f"must be an integer from 1 to {MAX_BATCH}"))
        if source is None:
            problems.append(
                {
                    "field": "file",
                    "message": "give the legacy policies: upload a file or archive, or name a "
                    "server-side path in source_config.policy_file_path",
                }
            )
        elif fmt in FORMATS:
            try:
                files = collect_sources([source.path], SourceFormat(fmt), self._limits)
            except (SourceNotFound, BatchTooLarge) as failure:
                problems.append({"field": "file", "message": failure.message})
            else:
                if not files:
                    problems.append({"field": "file", "message": "holds no legacy policy file"})
        if problems:
            raise ValidationFailed.listing(problems)
        return {
            "format": fmt,
            "validation_mode": mode,
            "activate": activate,
            "batch_size": batch,
        }

    def open(self, job: JobContext) -> JobCursor:
        if job.source is None:
            raise ValidationFailed.field("file", "the job has no source")
        return _Cursor(self, job)

    def report(self, job: JobContext, summary: Mapping[str, Any]) -> Mapping[str, Any]:
        del job
        return conversion_summary(summary)

    # --- used by the cursor -------------------------------------------------------------------

    def convert(
        self,
        texts: Sequence[SourceText],
        source_format: SourceFormat,
        engine: Callable[[], RegoEngine],
    ) -> list[PolicyResult]:
        """Convert and gate here, with the cursor's own engine (`engine`, built once per run)."""
        return run_conversion(
            texts,
            engine,
            source_format=source_format,
            settings=self._settings(),
            limits=self._limits,
        )

    def pool(self) -> ConversionPool | None:
        """Worker processes for a run's batches (each builds its engine once), when the kind
        converts in more than one process."""
        if self._processes <= 1:
            return None
        return ConversionPool(self._engine_factory, self._processes)

    def submit(
        self, pool: ConversionPool, texts: Sequence[SourceText], source_format: SourceFormat
    ) -> PendingConversion:
        return pool.submit(texts, source_format, self._settings(), self._limits)

    def _settings(self) -> ConversionSettings:
        return ConversionSettings.bounded_by(self._limits, None, self._hash)

    def engine(self) -> RegoEngine:
        return self._engine_factory()

    def files(self, source: JobSource, source_format: SourceFormat) -> list[Path]:
        return collect_sources([source.path], source_format, self._limits)

    def read(self, file: Path) -> SourceText | str:
        """The file's text, or why it cannot be read (the reason only: no path)."""
        try:
            return read_sources([file], self._limits)[0]
        except SourceUnreadable as failure:
            return str(failure.details["reason"])

    def record(
        self, job: JobContext, converted: list[ConvertedSource]
    ) -> tuple[int, int, int, dict[str, str]]:
        meta = EventMeta(
            job.tenant_id,
            Actor(sub=job.requested_by, actor_type="user", auth_method="migration_job"),
            self._hash,
        )
        done = record_conversions(self._app, job.tenant_id, converted, meta)
        return done.added, done.unchanged, done.activated, done.refused


@dataclass
class _Batch:
    """A batch's files read: the texts, the files that could not be read, and (converting in a
    pool) its conversion under way."""

    start: int
    files: list[Path]
    texts: list[SourceText]
    failed: list[FailedItem] = field(default_factory=list)
    failed_files: set[str] = field(default_factory=set)
    pending: PendingConversion | None = None


class _Cursor:
    def __init__(self, kind: PolicyConversionKind, job: JobContext) -> None:
        assert job.source is not None
        self._kind = kind
        self._job = job
        self._format = SourceFormat(job.parameters.get("format", "auto"))
        self._strict = job.parameters.get("validation_mode", "strict") == "strict"
        self._activate = bool(job.parameters.get("activate", False))
        self._batch = int(job.parameters.get("batch_size", DEFAULT_BATCH))
        self._root = job.source.path if job.source.path.is_dir() else job.source.path.parent
        self._files = kind.files(job.source, self._format)
        self.total = len(self._files)
        checkpoint = job.checkpoint or {}
        self._next = int(checkpoint.get("next", 0))
        self._counts = {key: int(checkpoint.get("counts", {}).get(key, 0)) for key in _COUNTS}
        self._engine: RegoEngine | None = None
        self._pool = kind.pool()
        self._ahead: _Batch | None = None
        self._texts: dict[str, str] = {}

    def close(self) -> None:
        close = getattr(self._engine, "close", None)
        if close is not None:
            close()
        if self._pool is not None:
            self._pool.close()

    def _own_engine(self) -> RegoEngine:
        if self._engine is None:
            self._engine = self._kind.engine()
        return self._engine

    def next_batch(self) -> BatchOutcome | None:
        if self._next >= self.total:
            return None
        ahead, self._ahead = self._ahead, None
        batch = ahead if ahead is not None and ahead.start == self._next else self._read(self._next)
        if batch.pending is not None:
            results = batch.pending.results()
        elif batch.texts:
            results = self._kind.convert(batch.texts, self._format, self._own_engine)
        else:
            results = []
        following = self._next + len(batch.files)
        if self._pool is not None and following < self.total:
            # The workers convert the next batch while this one is written to the registry;
            # it is counted (and checkpointed) only when its own turn comes.
            self._ahead = self._read(following)
        self._texts = {text.name: text.text for text in batch.texts}
        failed, failed_files = batch.failed, batch.failed_files
        converted = self._writable(results, failed, failed_files)
        added, unchanged, activated, refused = self._kind.record(self._job, converted)
        for result in results:
            if result.policy_id in refused:
                failed.append(
                    FailedItem(self._item(result), refused[result.policy_id], "Register it anew.")
                )
                failed_files.add(result.source)
        self._count(len(batch.files), results, failed_files, (added, unchanged, activated))
        self._next = following
        return BatchOutcome(
            processed=self._next,
            summary=dict(self._counts),
            checkpoint={"next": self._next, "counts": dict(self._counts)},
            failed=tuple(failed),
        )

    def _read(self, start: int) -> _Batch:
        """The files of the batch from `start` read; with a pool, their conversion started."""
        batch = _Batch(start, self._files[start : start + self._batch], [])
        for file in batch.files:
            read = self._kind.read(file)
            if isinstance(read, str):
                name = self._name(file)  # by its path in the source: no server path is shown
                batch.failed.append(
                    FailedItem(name, f"cannot read {name}: {read}", "Make the file readable UTF-8.")
                )
                batch.failed_files.add(str(file))
            else:
                # Named by its path in the source, so no server path reaches the Rego or reports.
                batch.texts.append(SourceText(self._name(file), read.text, read.size))
        if self._pool is not None and batch.texts:
            batch.pending = self._kind.submit(self._pool, batch.texts, self._format)
        return batch

    def _writable(
        self, results: list[PolicyResult], failed: list[FailedItem], failed_files: set[str]
    ) -> list[ConvertedSource]:
        writable: list[ConvertedSource] = []
        for result in results:
            if (
                result.rego is None
                or result.status is ConversionStatus.FAILED
                or (self._strict and result.status is not ConversionStatus.CONVERTED)
            ):
                failed.append(FailedItem(self._item(result), _error(result), _advice(result)))
                failed_files.add(result.source)
                continue
            writable.append(
                ConvertedSource(
                    policy_key=result.policy_id,
                    source=self._texts[result.source],
                    source_format=result.source_format,
                    rego=result.rego,
                    package=result.package or "",
                    conversion_status=result.status.value,
                    report={**result.as_json(), "migration_job_id": str(self._job.job_id)},
                    activate=self._activate and result.status is ConversionStatus.CONVERTED,
                )
            )
        return writable

    def _count(
        self,
        files: int,
        results: list[PolicyResult],
        failed_files: set[str],
        written: tuple[int, int, int],
    ) -> None:
        counts = self._counts
        counts["files"] += files
        counts["failed_items"] += len(failed_files)
        for result in results:
            counts["policies"] += 1
            counts[result.status.value] += 1
            counts["warnings"] += len(result.warnings)
            counts["errors"] += len(result.errors)
            counts["compliant"] += int(result.constitutional_compliant)
            counts["rules_total"] += result.rules_total
            if result.status is not ConversionStatus.FAILED:
                counts["rules_converted"] += result.rules_converted
        added, unchanged, activated = written
        counts["new_versions"] += added
        counts["unchanged_versions"] += unchanged
        counts["written"] += added + unchanged
        counts["activated"] += activated

    def _name(self, file: Path) -> str:
        """The file's path in the source (every file is the source itself, whose root is its
        directory, or one found under the source directory)."""
        return str(file.relative_to(self._root))

    def _item(self, result: PolicyResult) -> str:
        return f"{result.policy_id} ({result.source})"


def conversion_summary(counts: Mapping[str, Any]) -> dict[str, Any]:
    """The `result_summary` of a conversion job, from its cumulative counts."""
    policies = int(counts.get("policies", 0))
    return {
        "converted_policies": int(counts.get("written", 0)),
        "constitutional_compliance_rate": round(int(counts.get("compliant", 0)) / policies, 4)
        if policies
        else 1.0,
        "warnings": int(counts.get("warnings", 0)),
        "errors": int(counts.get("errors", 0)),
        "policies": policies,
        "new_versions": int(counts.get("new_versions", 0)),
        "unchanged_versions": int(counts.get("unchanged_versions", 0)),
        "activated": int(counts.get("activated", 0)),
        "rules_converted": int(counts.get("rules_converted", 0)),
        "rules_total": int(counts.get("rules_total", 0)),
        "conversion_coverage": {
            status: int(counts.get(status, 0))
            for status in ("converted", "unproven", "partial", "failed")
        },
    }


def _field(name: str, message: str) -> dict[str, Any]:
    return {"field": f"source_config.{name}", "message": message}


def _error(result: PolicyResult) -> str:
    """Why a result was not written: its first error, else (a failed result always has an error
    and any other has its Rego) a conversion that strict mode does not write."""
    if result.errors:
        return result.errors[0].message
    return f"conversion {result.status.value}: not written under validation_mode strict"


def _advice(result: PolicyResult) -> str:
    return result.recommendation or "Manual review required"
