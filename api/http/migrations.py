"""Migration jobs (`/v1/tenants/{tid}/migrations`): start (202 with a status URL; JSON naming a
server-side path, or a multipart upload of a file or archive), list, read one with its progress,
its results with the failed items, its PDF report, and cancel.

Writes go through `MigrationJobs` (in a worker thread) and answer from the aggregate; reads query
the jobs' read model in a session scoped to the tenant.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import partial
from io import BytesIO
from typing import Annotated, Any, TypeVar
from uuid import UUID

import anyio.to_thread
from litestar import Controller, Request, Response, delete, get, post
from litestar.openapi import ResponseSpec
from litestar.openapi.spec import OpenAPIMediaType, Operation, RequestBody, Schema
from litestar.openapi.spec.enums import OpenAPIFormat, OpenAPIType
from litestar.params import Parameter
from msgspec import UNSET

from api.http import examples as ex
from api.http.command_calls import HashHeader, IdempotencyKey, command_context
from api.http.dto import HASH_PATTERN
from api.http.errors import UnsupportedMediaType
from api.http.migration_dto import (
    FailedItemView,
    JobAccepted,
    JobCancelled,
    JobList,
    JobResults,
    JobStatusName,
    JobView,
    StartJobRequest,
)
from api.http.services import ApiServices
from api.http.tenants import MAX_OFFSET
from commands.authorization import Permission, authorize
from commands.context import CommandContext, Principal
from commands.migration_sources import Upload
from commands.migrations import MigrationJobs, StartJob
from domain.errors import NotFound, ValidationFailed
from infra.reports.migration_report import render_report
from projections.migrations import find_job, job_failures, list_jobs, progress_percentage

T = TypeVar("T")
_MULTIPART = "multipart/form-data"
_WRITE_REFUSALS = ex.refusals(
    "VALIDATION_ERROR", "FORBIDDEN", "NOT_FOUND", "IDEMPOTENCY_KEY_REUSED", *ex.WRITE
)
_UPLOAD_FORM = Schema(
    type=OpenAPIType.OBJECT,
    required=["file", "job_type", "source_system"],
    properties={
        "file": Schema(type=OpenAPIType.STRING, format=OpenAPIFormat.BINARY),
        "job_type": Schema(type=OpenAPIType.STRING),
        "source_system": Schema(type=OpenAPIType.STRING),
        "source_config": Schema(type=OpenAPIType.STRING, description="a JSON object"),
        "constitutional_hash": Schema(type=OpenAPIType.STRING, pattern=HASH_PATTERN),
    },
)


@dataclass
class _UploadOperation(Operation):
    def __post_init__(self) -> None:
        self.request_body = RequestBody(
            content={_MULTIPART: OpenAPIMediaType(schema=_UPLOAD_FORM)}, required=True
        )


def status_url(tenant_id: UUID, job_id: UUID) -> str:
    return f"/v1/tenants/{tenant_id}/migrations/{job_id}"


class MigrationController(Controller):
    path = "/tenants/{tenant_id:uuid}/migrations"
    tags = ["migrations"]  # noqa: RUF012

    @post(
        "/",
        status_code=202,
        summary="Start a migration job on a server-side path, or one that reads no file",
        description="policy_conversion and gap_analysis: LEGISLATIVE or EXECUTIVE; "
        "decision_log_import and shadow_mode: IMPLEMENTER, CONTROLLER or EXECUTIVE. A path "
        "(source_config.policy_file_path, source_path or file_path) must lie inside a directory "
        "the operator allows (ACGS_MIGRATION_SOURCE_DIRS); gap_analysis, shadow_mode and a "
        "decision_log_import from a PostgreSQL query read no file. A job_type this deployment "
        "does not run is 422 naming the known ones. Every bad field is reported at once, a "
        "kind's parameters as source_config.<name>; secret parameters (a conninfo) are sealed "
        "and shown as ***. Honours Idempotency-Key. 202: the job is pending; poll status_url.",
        responses={
            202: ResponseSpec(JobAccepted, description="Accepted"),
            **_WRITE_REFUSALS,
        },
    )
    async def start_job(
        self,
        request: Request[Any, Any, Any],
        tenant_id: UUID,
        data: StartJobRequest,
        principal: Principal,
        api: ApiServices,
        constitutional_hash: HashHeader = None,
        idempotency_key: IdempotencyKey = None,
    ) -> Response[JobAccepted]:
        ctx = command_context(request, principal, data.constitutional_hash, constitutional_hash)
        command = StartJob(data.job_type, data.source_system, data.source_config)
        return await _start(request, api, principal, ctx, tenant_id, command, idempotency_key)

    @post(
        "/upload",
        status_code=202,
        summary="Start a migration job on an uploaded file or archive (multipart/form-data)",
        description="As POST .../migrations, the input uploaded as the file field `file` (a "
        "legacy file, or a zip or tar archive of them: members with absolute paths, `..` or "
        "links are refused), at most ACGS_MIGRATION_UPLOAD_MAX_BYTES; source_config as a JSON "
        "text field. The upload is kept under the data directory.",
        responses={202: ResponseSpec(JobAccepted, description="Accepted"), **_WRITE_REFUSALS},
        operation_class=_UploadOperation,
        request_max_body_size=None,
    )
    async def upload_job(
        self,
        request: Request[Any, Any, Any],
        tenant_id: UUID,
        principal: Principal,
        api: ApiServices,
        constitutional_hash: HashHeader = None,
        idempotency_key: IdempotencyKey = None,
    ) -> Response[JobAccepted]:
        limit = api.system.settings.migration_upload_max_bytes
        command, in_body = await _upload(request, limit)
        ctx = command_context(request, principal, in_body, constitutional_hash)
        return await _start(request, api, principal, ctx, tenant_id, command, idempotency_key)

    @get(
        "/",
        summary="List the tenant's migration jobs",
        description="Every role of the tenant. Filters: status, job_type. Newest first.",
        responses={200: ResponseSpec(JobList, description="A page of jobs")},
    )
    async def list_jobs(
        self,
        tenant_id: UUID,
        principal: Principal,
        api: ApiServices,
        status: Annotated[JobStatusName | None, Parameter(query="status", required=False)] = None,
        job_type: Annotated[
            str | None, Parameter(query="job_type", required=False, max_length=50)
        ] = None,
        limit: Annotated[int, Parameter(ge=1, le=1000)] = 50,
        offset: Annotated[int, Parameter(ge=0, le=MAX_OFFSET)] = 0,
    ) -> JobList:
        authorize(principal, Permission.MIGRATION_READ, tenant_id)
        async with api.database.tenant_session(tenant_id) as conn:
            rows, total = await list_jobs(
                conn, status=status, job_type=job_type, limit=limit, offset=offset
            )
        return JobList(
            jobs=[_view(row, api.constitutional_hash) for row in rows],
            total=total,
            limit=limit,
            offset=offset,
            constitutional_hash=api.constitutional_hash,
        )

    @get(
        "/{job_id:uuid}",
        summary="Read a job: status, counts, progress percentage and estimated completion",
        responses={
            200: ResponseSpec(JobView, description="The job"),
            **ex.refusals("NOT_FOUND", "FORBIDDEN"),
        },
    )
    async def get_job(
        self, tenant_id: UUID, job_id: UUID, principal: Principal, api: ApiServices
    ) -> JobView:
        row = await _job_row(api, principal, tenant_id, job_id)
        return _view(row, api.constitutional_hash)

    @get(
        "/{job_id:uuid}/results",
        summary="A job's results: result_summary and the failed items with recommendations",
        responses={
            200: ResponseSpec(JobResults, description="The results"),
            **ex.refusals("NOT_FOUND", "FORBIDDEN"),
        },
    )
    async def get_results(
        self, tenant_id: UUID, job_id: UUID, principal: Principal, api: ApiServices
    ) -> JobResults:
        row = await _job_row(api, principal, tenant_id, job_id)
        async with api.database.tenant_session(tenant_id) as conn:
            failures = await job_failures(conn, job_id)
        return JobResults(
            job_id=row["job_id"],
            job_type=row["job_type"],
            job_status=row["job_status"],
            total_items=row["total_items"],
            processed_items=row["processed_items"],
            successful_items=row["successful_items"],
            failed_items=row["failed_items"],
            result_summary=row["result_summary"],
            failed_items_details=[FailedItemView(**f) for f in failures],
            error_details=row["error_details"],
            download_url=status_url(tenant_id, job_id) + "/report.pdf",
            constitutional_hash=api.constitutional_hash,
        )

    @get(
        "/{job_id:uuid}/report.pdf",
        summary="A job's PDF report: summary, failed items with recommendations, charts",
        media_type="application/pdf",
        responses={
            200: ResponseSpec(bytes, description="The report", media_type="application/pdf"),
            **ex.refusals("NOT_FOUND", "FORBIDDEN"),
        },
    )
    async def get_report(
        self, tenant_id: UUID, job_id: UUID, principal: Principal, api: ApiServices
    ) -> Response[bytes]:
        row = await _job_row(api, principal, tenant_id, job_id)
        async with api.database.tenant_session(tenant_id) as conn:
            failures = await job_failures(conn, job_id)
        row["progress_percentage"] = progress_percentage(row["processed_items"], row["total_items"])
        pdf = await in_thread(partial(render_report, row, failures))
        return Response(
            pdf,
            media_type="application/pdf",
            headers={"Content-Disposition": f'attachment; filename="migration-{job_id}.pdf"'},
        )

    @delete(
        "/{job_id:uuid}",
        status_code=200,
        summary="Cancel a pending or running job",
        description="The role that may start a job of its kind. A running job stops between "
        "batches. A completed, failed or cancelled job is 409 INVALID_STATE_TRANSITION.",
        responses={
            200: ResponseSpec(JobCancelled, description="Cancelled"),
            **ex.refusals(
                "NOT_FOUND",
                "FORBIDDEN",
                "INVALID_STATE_TRANSITION",
                "CONCURRENT_MODIFICATION",
                *ex.WRITE,
            ),
        },
    )
    async def cancel_job(
        self,
        request: Request[Any, Any, Any],
        tenant_id: UUID,
        job_id: UUID,
        principal: Principal,
        api: ApiServices,
        constitutional_hash: HashHeader = None,
    ) -> JobCancelled:
        ctx = command_context(request, principal, UNSET, constitutional_hash)
        job = await in_thread(partial(_jobs(api).cancel, ctx, tenant_id, job_id))
        return JobCancelled(
            job_id=job.id,
            job_status=job.status.value,
            processed_items=job.processed,
            cancelled_at=job.modified_on,
            constitutional_hash=api.constitutional_hash,
        )


async def _start(
    request: Request[Any, Any, Any],
    api: ApiServices,
    principal: Principal,
    ctx: CommandContext,
    tenant_id: UUID,
    command: StartJob,
    idempotency_key: str | None,
) -> Response[JobAccepted]:
    async def start() -> Response[Any]:
        job = await in_thread(partial(_jobs(api).start, ctx, tenant_id, command))
        body = JobAccepted(
            job_id=job.id,
            tenant_id=tenant_id,
            job_type=job.job_type,
            job_status=job.status.value,
            created_at=job.created_on,
            status_url=status_url(tenant_id, job.id),
            constitutional_hash=api.constitutional_hash,
        )
        return Response(body, status_code=202)

    return await api.idempotency.run(request, principal, idempotency_key, start)


async def _upload(request: Request[Any, Any, Any], limit: int) -> tuple[StartJob, Any]:
    media = (request.headers.get("content-type") or "").partition(";")[0].strip().lower()
    if media != _MULTIPART:
        raise UnsupportedMediaType(
            "upload the job's input as multipart/form-data (JSON goes to POST .../migrations)",
            {"supported": [_MULTIPART]},
        )
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit + 64 * 1024:
        raise ValidationFailed.field(
            "file", f"is larger than {limit} bytes (ACGS_MIGRATION_UPLOAD_MAX_BYTES)"
        )
    await request.body()  # kept: the idempotency fingerprint reads it again
    try:
        form = await request.form()
    except Exception:  # noqa: BLE001 - any malformed multipart body is the client's fault
        raise ValidationFailed.field("body", "is not a valid multipart/form-data body") from None
    problems: list[dict[str, Any]] = []
    upload = form.get("file")
    if upload is None or isinstance(upload, str):
        problems.append({"field": "file", "message": "is required (the file or archive)"})
    fields = {name: form.get(name) for name in ("job_type", "source_system")}
    for name, value in fields.items():
        if not isinstance(value, str) or not value.strip():
            problems.append({"field": name, "message": "is required"})
    source_config: Any = {}
    raw_config = form.get("source_config")
    if isinstance(raw_config, str) and raw_config.strip():
        try:
            source_config = json.loads(raw_config)
        except ValueError:
            source_config = None
        if not isinstance(source_config, dict):
            problems.append({"field": "source_config", "message": "must be a JSON object"})
    if problems:
        raise ValidationFailed.listing(problems)
    assert upload is not None
    assert not isinstance(upload, str)
    data = await upload.read()
    command = StartJob(
        job_type=str(fields["job_type"]),
        source_system=str(fields["source_system"]),
        source_config=source_config,
        upload=Upload(upload.filename or "", BytesIO(data), upload.content_type or None),
    )
    return command, form.get("constitutional_hash") or UNSET


async def _job_row(
    api: ApiServices, principal: Principal, tenant_id: UUID, job_id: UUID
) -> dict[str, Any]:
    authorize(principal, Permission.MIGRATION_READ, tenant_id)
    async with api.database.tenant_session(tenant_id) as conn:
        row = await find_job(conn, job_id)
    if row is None:
        raise NotFound("migration job not found", {"job_id": str(job_id)})
    return row


def _view(row: dict[str, Any], constitutional_hash: str) -> JobView:
    return JobView(
        job_id=row["job_id"],
        tenant_id=row["tenant_id"],
        job_type=row["job_type"],
        job_status=row["job_status"],
        source_system=row["source_system"],
        source_config=row["source_config"],
        source_filename=row["source_filename"],
        total_items=row["total_items"],
        processed_items=row["processed_items"],
        successful_items=row["successful_items"],
        failed_items=row["failed_items"],
        progress_percentage=progress_percentage(row["processed_items"], row["total_items"]),
        started_at=row["started_at"],
        estimated_completion=row["estimated_completion"],
        completed_at=row["completed_at"],
        cancelled_at=row["cancelled_at"],
        error_details=row["error_details"],
        created_at=row["created_at"],
        created_by=row["created_by"],
        status_url=status_url(row["tenant_id"], row["job_id"]),
        constitutional_hash=constitutional_hash,
    )


def _jobs(api: ApiServices) -> MigrationJobs:
    jobs = api.system.migrations
    assert jobs is not None  # build() always builds them (build_migrations)
    return jobs


async def in_thread(call: partial[T]) -> T:
    return await anyio.to_thread.run_sync(call)
