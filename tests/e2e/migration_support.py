"""Helpers of the migration-job tests: legacy corpora as archives and directories, a runner with
settings of the test's choosing, and waiting on a job's events."""

from __future__ import annotations

import io
import zipfile
from functools import partial
from pathlib import Path
from typing import Any
from uuid import UUID

import httpx

from api.bootstrap import System
from commands.migration_runner import MigrationRunner, RunnerSettings
from commands.policy_conversion_job import PolicyConversionKind
from domain.migration.job import MigrationJob
from domain.policy.limits import DEFAULT_LIMITS
from infra.postgres.job_queue import PostgresJobQueue
from infra.rego.bounded_engine import BoundedRegoEngine
from tests.load.policy_corpus import corpus
from tests.peers.http import HASH

WRITE = {"X-Constitutional-Hash": HASH}
BROKEN = {
    "broken-syntax.json": '{"policy_id": "broken-syntax", "rules": [',
    "broken-rule.rules": "POLICY broken-rule\nRULE r WHEN user.role === THEN ALLOW\n",
}


def corpus_files(size: int, *, broken: bool = False) -> dict[str, str]:
    files = dict(corpus(size))
    if broken:
        files.update(BROKEN)
    return files


def zipped(files: dict[str, str]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, text in files.items():
            archive.writestr(f"legacy/{name}", text)
    return out.getvalue()


def written(directory: Path, files: dict[str, str]) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (directory / name).write_text(text, encoding="utf-8")
    return directory


def upload(
    client: httpx.Client,
    tenant: UUID,
    archive: bytes,
    *,
    filename: str = "legacy.zip",
    source_config: str = "{}",
    job_type: str = "policy_conversion",
) -> httpx.Response:
    return client.post(
        f"/v1/tenants/{tenant}/migrations/upload",
        files={"file": (filename, archive, "application/zip")},
        data={
            "job_type": job_type,
            "source_system": "LegacyGovernanceV1",
            "source_config": source_config,
            "constitutional_hash": HASH,
        },
    )


def runner(system: System, *, processes: int = 1, **settings: Any) -> MigrationRunner:
    """A runner of the system's jobs whose conversion kind uses `processes` processes."""
    limits = DEFAULT_LIMITS
    kind = PolicyConversionKind(
        system.app,
        HASH,
        partial(
            BoundedRegoEngine,
            seconds=limits.evaluation_seconds,
            memory_bytes=limits.evaluation_memory_bytes,
        ),
        processes=processes,
    )
    return MigrationRunner(
        system.app,
        {kind.name: kind},
        PostgresJobQueue(system.projector_conninfo),
        system.settings.data_dir / "migrations" / "work",
        RunnerSettings(**{"constitutional_hash": HASH, "poll_seconds": 0.05, **settings}),
    )


def job(system: System, tenant: UUID, job_id: UUID | str) -> MigrationJob:
    return system.app.load(tenant, UUID(str(job_id)), MigrationJob)
