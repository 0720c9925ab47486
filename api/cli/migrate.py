"""`acgs migrate start|status|results|cancel`: migration jobs from the console, over the same
commands as the HTTP API. The console operator acts as a platform EXECUTIVE (as for `acgs token
issue`).

`start --file` uploads a local file or archive (stored under the data directory, as an HTTP upload
is); `start --path` names a server-side path inside ACGS_MIGRATION_SOURCE_DIRS. `start --wait`
shows a progress bar until the job ends, and runs the job in this process unless a worker has
claimed it already.
"""

from __future__ import annotations

import contextlib
import getpass
import json
import threading
import time
from pathlib import Path
from typing import Any
from uuid import UUID

import click
import psycopg
from psycopg.rows import dict_row
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from api.bootstrap import System, build
from api.cli.audit import _tenant
from api.settings import Settings
from api.tokens import operator_context
from commands.migration_sources import PATH_KEYS, Upload
from commands.migrations import MigrationJobs, StartJob
from domain.errors import DomainError
from domain.migration.job import TERMINAL, MigrationJob
from infra.reports.migration_report import render_report
from projections.migrations import JOB_COLUMNS, progress_percentage


@click.group()
def migrate() -> None:
    """Migration jobs: start, follow, read results, cancel."""


def _jobs(system: System) -> MigrationJobs:
    assert system.migrations is not None
    return system.migrations


def _fail(failure: DomainError) -> None:
    details = json.dumps(failure.details, default=str) if failure.details else ""
    raise click.ClickException(f"{failure.code}: {failure.message} {details}".strip())


@migrate.command()
@click.option("--tenant", required=True, help="The tenant's slug or id.")
@click.option("--type", "job_type", default="policy_conversion", show_default=True)
@click.option("--source-system", default="LegacyGovernanceV1", show_default=True)
@click.option("--config", "config", default="{}", help="source_config as a JSON object.")
@click.option("--file", "file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--path", "path", help="A server-side path inside ACGS_MIGRATION_SOURCE_DIRS.")
@click.option("--wait", is_flag=True, help="Show progress until the job ends (and run it).")
def start(
    tenant: str,
    job_type: str,
    source_system: str,
    config: str,
    file: Path | None,
    path: str | None,
    wait: bool,
) -> None:
    """Start a job; print its id (and, with --wait, its outcome)."""
    try:
        source_config = json.loads(config)
    except ValueError:
        source_config = None
    if not isinstance(source_config, dict):
        raise click.BadParameter("must be a JSON object", param_hint="--config")
    if path is not None:
        source_config[PATH_KEYS[1]] = path
    system = build(Settings.from_env())
    try:
        tenant_id = _tenant(system, tenant)
        ctx = operator_context(system, getpass.getuser())
        with contextlib.ExitStack() as files:
            upload = None
            if file is not None:
                upload = Upload(file.name, files.enter_context(file.open("rb")))
            try:
                job = _jobs(system).start(
                    ctx, tenant_id, StartJob(job_type, source_system, source_config, upload)
                )
            except DomainError as failure:
                _fail(failure)
        click.echo(f"job {job.id} {job.status.value}")
        if wait:
            done = _wait(system, tenant_id, job.id)
            click.echo(json.dumps(_status(done), indent=2, default=str))
            if done.status.value != "completed":
                raise SystemExit(1)
    finally:
        system.close()


def _wait(system: System, tenant_id: UUID, job_id: UUID) -> MigrationJob:
    """Run the job here unless a worker holds it; a progress bar until it ends."""
    stop = threading.Event()
    runner = system.migration_runner()
    worker = threading.Thread(target=runner.run_job, args=(tenant_id, job_id, stop), daemon=True)
    worker.start()
    jobs = _jobs(system)
    console = Console(stderr=True)
    columns = (
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    try:
        with Progress(*columns, console=console, disable=not console.is_terminal) as bar:
            task = bar.add_task("migrating", total=None)
            while True:
                job = jobs.job(tenant_id, job_id)
                bar.update(
                    task,
                    total=job.total or None,
                    completed=job.processed,
                    description=job.status.value,
                )
                if job.status in TERMINAL:
                    return job
                time.sleep(0.5)
    finally:
        stop.set()
        worker.join()


def _status(job: MigrationJob) -> dict[str, Any]:
    return {
        "job_id": str(job.id),
        "tenant_id": str(job.tenant_id),
        "job_type": job.job_type,
        "job_status": job.status.value,
        "total_items": job.total,
        "processed_items": job.processed,
        "successful_items": job.successful,
        "failed_items": job.failed,
        "progress_percentage": progress_percentage(job.processed, job.total),
        "started_at": job.started_at,
        "error_details": job.error_details,
    }


@migrate.command()
@click.option("--tenant", required=True, help="The tenant's slug or id.")
@click.argument("job_id", type=click.UUID)
def status(tenant: str, job_id: UUID) -> None:
    """A job's status and counts, as JSON."""
    system = build(Settings.from_env())
    try:
        try:
            job = _jobs(system).job(_tenant(system, tenant), job_id)
        except DomainError as failure:
            _fail(failure)
        click.echo(json.dumps(_status(job), indent=2, default=str))
    finally:
        system.close()


@migrate.command()
@click.option("--tenant", required=True, help="The tenant's slug or id.")
@click.option("--pdf", type=click.Path(dir_okay=False, path_type=Path), help="Write the report.")
@click.argument("job_id", type=click.UUID)
def results(tenant: str, pdf: Path | None, job_id: UUID) -> None:
    """A job's result_summary and failed items, as JSON (and its PDF report with --pdf)."""
    system = build(Settings.from_env())
    try:
        tenant_id = _tenant(system, tenant)
        system.runner("migrations").catch_up()
        with psycopg.connect(system.projector_conninfo, row_factory=dict_row) as conn:
            job = conn.execute(
                f"SELECT {JOB_COLUMNS} FROM migration_jobs "  # noqa: S608 - fixed column list; ids are bound parameters  # nosec B608
                "WHERE tenant_id = %s AND job_id = %s",
                [tenant_id, job_id],
            ).fetchone()
            if job is None:
                raise click.ClickException(f"NOT_FOUND: no job {job_id} in that tenant")
            failures = conn.execute(
                "SELECT item AS item_id, error, recommendation FROM migration_job_failures "
                "WHERE tenant_id = %s AND job_id = %s ORDER BY seq",
                [tenant_id, job_id],
            ).fetchall()
        job["progress_percentage"] = progress_percentage(job["processed_items"], job["total_items"])
        body = {
            "job_id": str(job_id),
            "job_status": job["job_status"],
            "total_items": job["total_items"],
            "successful_items": job["successful_items"],
            "failed_items": job["failed_items"],
            "result_summary": job["result_summary"],
            "failed_items_details": failures,
        }
        click.echo(json.dumps(body, indent=2, default=str))
        if pdf is not None:
            pdf.write_bytes(render_report(job, failures))
            click.echo(f"report written to {pdf}", err=True)
    finally:
        system.close()


@migrate.command()
@click.option("--tenant", required=True, help="The tenant's slug or id.")
@click.argument("job_id", type=click.UUID)
def cancel(tenant: str, job_id: UUID) -> None:
    """Cancel a pending or running job."""
    system = build(Settings.from_env())
    try:
        tenant_id = _tenant(system, tenant)
        ctx = operator_context(system, getpass.getuser())
        try:
            job = _jobs(system).cancel(ctx, tenant_id, job_id)
        except DomainError as failure:
            _fail(failure)
        click.echo(f"job {job.id} {job.status.value} after {job.processed} items")
    finally:
        system.close()
