"""The console's migration-job pages: the tenant's jobs (filters and paging as the API offers),
starting one (a policy conversion on an uploaded file or archive, a gap analysis, or any kind this
deployment runs with its parameters as JSON), one job with a progress bar that updates itself
while the job runs, its results and failed items, its PDF report, and cancelling it.

Every role of the tenant reads; starting or cancelling a job takes the permission of its kind
(LEGISLATIVE or EXECUTIVE convert, IMPLEMENTER, CONTROLLER or EXECUTIVE import)."""

from __future__ import annotations

import json
from functools import partial
from io import BytesIO
from typing import Any
from urllib.parse import urlencode
from uuid import UUID

from litestar import Request, Response, get, post

from api.console.freshness import since, wait_for_write
from api.console.permissions import may
from api.console.principal import SignedIn
from api.console.rendering import (
    PREFIX,
    Pending,
    api_of,
    context_of,
    field_errors,
    go,
    page,
    read_form,
    tenant_row,
    who_of,
)
from api.console.uploads import read_form_with_files
from api.http.command_calls import in_thread
from commands.authorization import Permission, authorize, job_permission
from commands.migration_sources import Upload
from commands.migrations import MigrationJobs, StartJob
from commands.policy_conversion_job import DEFAULT_BATCH, MODES
from commands.policy_intake import FORMATS
from domain.errors import DomainError, Forbidden, NotFound
from domain.policy.gaps.tracking import GapScope
from infra.reports.migration_report import render_report
from projections.migrations import find_job, job_failures, list_jobs, progress_percentage

PAGE_SIZE = 50
STATUSES = ("pending", "running", "completed", "failed", "cancelled")
FINISHED = frozenset({"completed", "failed", "cancelled"})
CONVERSION = "policy_conversion"
GAPS = "gap_analysis"
# An upload is bounded by the deployment's ACGS_MIGRATION_UPLOAD_MAX_BYTES; the route's own bound
# (litestar refuses a larger body before reading it) is the largest an operator may set here.
UPLOAD_CAP = 1024 * 1024 * 1024
MAX_PARAMETERS = 64 * 1024  # characters of the parameters' JSON


def _jobs(request: Request[Any, Any, Any]) -> MigrationJobs:
    jobs = api_of(request).system.migrations
    assert jobs is not None
    return jobs


def job_path(tenant_id: UUID, job_id: UUID) -> str:
    """A job's path under /console."""
    return f"/tenants/{tenant_id}/migrations/{job_id}"


def _startable(request: Request[Any, Any, Any], who: SignedIn, tenant_id: UUID) -> list[str]:
    """The kinds this deployment runs that the principal may start, conversion first."""
    kinds = sorted(_jobs(request).kinds, key=lambda k: (k != CONVERSION, k))
    return [k for k in kinds if may(who.principal, job_permission(k), tenant_id)]


# --- the list ---------------------------------------------------------------------------------


@get("/tenants/{tenant_id:uuid}/migrations")
async def jobs_page(request: Request[Any, Any, Any], tenant_id: UUID) -> Response[str]:
    """With htmx (`rows=1`) only the table, which polls itself while a job is unfinished."""
    who = await who_of(request)
    authorize(who.principal, Permission.MIGRATION_READ, tenant_id)
    row = await tenant_row(request, tenant_id)
    params = request.query_params
    status = params.get("status") if params.get("status") in STATUSES else None
    kinds = sorted(_jobs(request).kinds)
    job_type = params.get("job_type") if params.get("job_type") in kinds else None
    raw_offset = params.get("offset", "0")
    offset = min(int(raw_offset), 1_000_000) if raw_offset.isdigit() else 0
    async with api_of(request).database.tenant_session(tenant_id) as conn:
        rows, total = await list_jobs(
            conn, status=status, job_type=job_type, limit=PAGE_SIZE, offset=offset
        )
    for r in rows:
        r["path"] = job_path(tenant_id, r["job_id"])
        r["progress"] = progress_percentage(r["processed_items"], r["total_items"])
    kept = {k: v for k, v in (("status", status), ("job_type", job_type)) if v}
    here = f"/tenants/{tenant_id}/migrations?" + urlencode({**kept, "offset": offset, "rows": 1})

    def link(at: int) -> str:
        return f"/tenants/{tenant_id}/migrations?" + urlencode({**kept, "offset": at})

    template = "job_rows.html" if params.get("rows") else "job_list.html"
    return page(
        request, template, who=who, tenant=row, jobs=rows, total=total, offset=offset,
        filters={"status": status or "", "job_type": job_type or ""}, statuses=STATUSES,
        kinds=kinds, here=here, live=any(r["job_status"] not in FINISHED for r in rows),
        previous=link(max(0, offset - PAGE_SIZE)) if offset else None,
        next=link(offset + PAGE_SIZE) if offset + PAGE_SIZE < total else None,
        can_start=bool(_startable(request, who, tenant_id)),
    )  # fmt: skip


# --- starting a job ---------------------------------------------------------------------------

_DEFAULTS = {
    "job_type": CONVERSION,
    "source_system": "",
    "format": "auto",
    "validation_mode": "strict",
    "batch_size": "",
    "scope": GapScope.ACTIVE.value,
    "parameters": "",
}


def _form_page(
    request: Request[Any, Any, Any],
    who: SignedIn,
    tenant: Any,
    values: dict[str, str],
    errors: dict[str, str],
    status: int = 200,
) -> Response[str]:
    tenant_id = tenant["tenant_id"]
    return page(
        request, "job_new.html", who=who, tenant=tenant, values=values, errors=errors,
        kinds=_startable(request, who, tenant_id), formats=FORMATS, modes=MODES,
        scopes=[s.value for s in GapScope], default_batch=DEFAULT_BATCH,
        upload_limit=api_of(request).system.settings.migration_upload_max_bytes, status=status,
    )  # fmt: skip


@get("/tenants/{tenant_id:uuid}/migrations/new")
async def new_job_page(request: Request[Any, Any, Any], tenant_id: UUID) -> Response[str]:
    who = await who_of(request)
    authorize(who.principal, Permission.MIGRATION_READ, tenant_id)
    row = await tenant_row(request, tenant_id)
    if not _startable(request, who, tenant_id):
        authorize(who.principal, Permission.MIGRATION_CONVERT, tenant_id)  # says who may
    return _form_page(request, who, row, dict(_DEFAULTS), {})


def _source_config(values: dict[str, str], errors: dict[str, str]) -> dict[str, Any]:
    """The job's `source_config`: the parameters' JSON, then the fields of the chosen kind."""
    config: dict[str, Any] = {}
    raw = values["parameters"].strip()
    if raw:
        try:
            parsed = json.loads(raw)
        except ValueError as bad:
            errors["parameters"] = f"is not valid JSON: {bad}"
        else:
            if isinstance(parsed, dict):
                config.update(parsed)
            else:
                errors["parameters"] = "must be a JSON object"
    if values["job_type"] == CONVERSION:
        config["format"] = values["format"]
        config["validation_mode"] = values["validation_mode"]
        config["activate"] = values.get("activate") == "on"
        if values["batch_size"].strip():
            try:
                config["batch_size"] = int(values["batch_size"])
            except ValueError:
                errors["batch_size"] = "must be a whole number"
    elif values["job_type"] == GAPS:
        config["scope"] = values["scope"]
        if values["batch_size"].strip():
            try:
                config["batch_size"] = int(values["batch_size"])
            except ValueError:
                errors["batch_size"] = "must be a whole number"
    return config


def _errors_of(refused: DomainError) -> dict[str, str]:
    """The command's problems, named as the form's fields: `source_config.format` is the
    field `format`; a parameter with no field of its own stays under the parameters."""
    errors: dict[str, str] = {}
    for field, message in field_errors(refused).items():
        name = field.removeprefix("source_config.")
        name = "file" if name == "source" else name  # the job's input is the form's file
        if name in _DEFAULTS or name in ("file", "activate"):
            errors[name] = message
        else:
            errors.setdefault("parameters", "")
            errors["parameters"] = (errors["parameters"] + f" {name}: {message}.").strip()
    return errors or {"form": refused.message}


@post("/tenants/{tenant_id:uuid}/migrations", request_max_body_size=UPLOAD_CAP)
async def start_job(request: Request[Any, Any, Any], tenant_id: UUID) -> Response[Any]:
    who = await who_of(request)
    form = await read_form_with_files(request, {"parameters": MAX_PARAMETERS})
    row = await tenant_row(request, tenant_id)
    values = {k: form.get(k, default) for k, default in _DEFAULTS.items()}
    values["activate"] = form.get("activate")
    errors: dict[str, str] = {}
    config = _source_config(values, errors)
    limit = api_of(request).system.settings.migration_upload_max_bytes
    file = form.files.get("file")
    upload = None
    if file is not None:
        try:
            data = await file.read(limit + 1)
        finally:
            await file.close()
        if len(data) > limit:
            errors["file"] = f"is larger than {limit} bytes (ACGS_MIGRATION_UPLOAD_MAX_BYTES)"
        upload = Upload(file.filename, BytesIO(data), file.content_type or None)
    if not errors:
        command = StartJob(values["job_type"], values["source_system"], config, upload)
        try:
            job = await in_thread(
                partial(_jobs(request).start, context_of(who, form.values), tenant_id, command)
            )
        except DomainError as refused:
            if isinstance(refused, Forbidden | NotFound):
                raise
            errors = _errors_of(refused)
        else:
            return go(f"{PREFIX}{job_path(tenant_id, job.id)}?started=1")
    if file is not None:
        errors.setdefault("file", "choose the file again")
    return _form_page(request, who, row, values, errors, status=422)


# --- one job ----------------------------------------------------------------------------------


async def _job(request: Request[Any, Any, Any], tenant_id: UUID, job_id: UUID) -> dict[str, Any]:
    async with api_of(request).database.tenant_session(tenant_id) as conn:
        row = await find_job(conn, job_id)
    if row is None:
        if request.query_params.get("started"):
            raise Pending("the job")
        raise NotFound("migration job not found", {"job_id": str(job_id)})
    wait_for_write(request, row["updated_at"], "the change")
    row["progress"] = progress_percentage(row["processed_items"], row["total_items"])
    row["finished"] = row["job_status"] in FINISHED
    row["path"] = job_path(tenant_id, job_id)
    return row


async def _job_values(
    request: Request[Any, Any, Any], who: SignedIn, tenant_id: UUID, job_id: UUID
) -> dict[str, Any]:
    authorize(who.principal, Permission.MIGRATION_READ, tenant_id)
    job = await _job(request, tenant_id, job_id)
    failures: list[dict[str, Any]] = []
    if job["finished"]:
        async with api_of(request).database.tenant_session(tenant_id) as conn:
            failures = await job_failures(conn, job_id)
    summary = job["result_summary"] or {}
    return {
        "job": job,
        "failures": failures,
        "summary": [(k, _shown(v)) for k, v in sorted(summary.items())],
        "can_cancel": not job["finished"]
        and may(who.principal, job_permission(job["job_type"]), tenant_id),
    }


def _shown(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, sort_keys=True, default=str)


@get("/tenants/{tenant_id:uuid}/migrations/{job_id:uuid}")
async def job_page(request: Request[Any, Any, Any], tenant_id: UUID, job_id: UUID) -> Response[str]:
    who = await who_of(request)
    values = await _job_values(request, who, tenant_id, job_id)
    row = await tenant_row(request, tenant_id)
    config = [(k, _shown(v)) for k, v in sorted(values["job"]["source_config"].items())]
    return page(request, "job.html", who=who, tenant=row, config=config, **values)


@get("/tenants/{tenant_id:uuid}/migrations/{job_id:uuid}/live")
async def job_live(request: Request[Any, Any, Any], tenant_id: UUID, job_id: UUID) -> Response[str]:
    """The part of the job's page that changes while it runs (htmx polls it every second and
    stops once the job has finished)."""
    who = await who_of(request)
    values = await _job_values(request, who, tenant_id, job_id)
    return page(request, "job_live.html", who=who, **values)


@get("/tenants/{tenant_id:uuid}/migrations/{job_id:uuid}/report.pdf")
async def job_report(
    request: Request[Any, Any, Any], tenant_id: UUID, job_id: UUID
) -> Response[bytes]:
    """The same PDF as GET /v1/tenants/{tid}/migrations/{job_id}/report.pdf."""
    who = await who_of(request)
    authorize(who.principal, Permission.MIGRATION_READ, tenant_id)
    job = await _job(request, tenant_id, job_id)
    async with api_of(request).database.tenant_session(tenant_id) as conn:
        failures = await job_failures(conn, job_id)
    job["progress_percentage"] = job["progress"]
    pdf = await in_thread(partial(render_report, job, failures))
    return Response(
        pdf,
        media_type="application/pdf",
        headers={"Content-Disposition": f'attachment; filename="migration-{job_id}.pdf"'},
    )


@post("/tenants/{tenant_id:uuid}/migrations/{job_id:uuid}/cancel")
async def cancel_job(
    request: Request[Any, Any, Any], tenant_id: UUID, job_id: UUID
) -> Response[Any]:
    who = await who_of(request)
    form = await read_form(request)
    job = await in_thread(partial(_jobs(request).cancel, context_of(who, form), tenant_id, job_id))
    return go(f"{PREFIX}{job_path(tenant_id, job_id)}?since={since(job.modified_on)}")


ROUTES = [jobs_page, new_job_page, start_job, job_page, job_live, job_report, cancel_job]
