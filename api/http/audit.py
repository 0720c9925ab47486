"""The audit log over HTTP: query a tenant's log (or, for platform principals, every tenant's),
export it as a background job, read the job's status, download its file, and read or change the
tenant's retention (docs/audit.md).

Query parameters are parsed here so that every bad one is listed in one VALIDATION_ERROR. Reads
run in a session scoped to the tenant (row-level security), a cross-tenant query in the
platform-wide session; exports, cross-tenant queries and retention changes are audited by
`commands.audit`.
"""

from __future__ import annotations

import base64
import re
from collections.abc import AsyncIterator, Mapping
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Annotated, Any
from uuid import UUID

import msgspec
from litestar import Controller, Request, Response, get, put
from litestar.openapi import ResponseSpec
from litestar.openapi.spec import Schema
from litestar.params import Body, Parameter
from litestar.response import Stream
from msgspec import UNSET, UnsetType

from api.http import examples as ex
from api.http.command_calls import HashHeader, command_context, in_thread
from api.http.dto import HashValue, documented
from api.http.services import ApiServices
from commands.audit import RetentionSettings
from commands.authorization import Permission, authorize
from commands.context import Principal
from domain.audit import CATEGORIES, MAX_HOLD_REASON, MAX_RETENTION_DAYS, RESULTS
from domain.errors import ExportExpired, ExportNotReady, NotFound, ValidationFailed
from projections.audit_export import (
    export_chunks,
    export_status,
    new_export_id,
    queue_export,
)
from projections.audit_formats import FORMATS, MEDIA_TYPES
from projections.audit_queries import AuditFilters, audit_page


def _q(description: str, **schema: Any) -> Any:
    """A query parameter as documented; its value is checked by `parse_filters`, which lists
    every bad parameter at once (so the framework is not asked to check any)."""
    return Parameter(required=False, description=description, schema_extra=schema or None)


Start = Annotated[str | None, _q("Start, inclusive (ISO 8601; required)", format="date-time")]
End = Annotated[str | None, _q("End, exclusive (ISO 8601; required)", format="date-time")]
Category = Annotated[str | None, _q("Exact match", enum=list(CATEGORIES))]
Result = Annotated[str | None, _q("Exact match", enum=list(RESULTS))]
Actor = Annotated[str | None, _q("Exact match", maxLength=255, minLength=1)]
EventType = Annotated[
    str | None, _q("Exact match, e.g. tenant.created", maxLength=100, minLength=1)
]
Target = Annotated[str | None, _q("Exact match, e.g. tenant/<id>", maxLength=500, minLength=1)]
Limit = Annotated[str | None, _q("Rows per page, 1..1000 (default 100)", pattern="^[0-9]{1,4}$")]
Offset = Annotated[str | None, _q("Rows skipped (default 0)", pattern="^[0-9]{1,9}$")]
After = Annotated[str | None, _q("Keyset cursor: a page's next_cursor", maxLength=200)]
Format = Annotated[str | None, _q("File format (default json)", enum=list(FORMATS))]
TenantFilter = Annotated[str | None, _q("Only this tenant", format="uuid")]
REQUIRED_QUERY = ("start_time", "end_time")


EXPORT_ID = re.compile(r"^exp_[0-9a-f]{24}$")


def _storable(text: str) -> bool:
    """Text PostgreSQL can hold: no NUL, no lone surrogate."""
    return "\x00" not in text and not any("\ud800" <= c <= "\udfff" for c in text)


def _given(**params: str | None) -> dict[str, str]:
    return {k: v for k, v in params.items() if v is not None}


DEFAULT_LIMIT = 100
MAX_LIMIT = 1000
MAX_OFFSET = 2**31 - 1
SHA256_HEADER = "X-Content-SHA256"
_TEXT_FILTERS = {"actor_id": 255, "event_type": 100, "target_resource": 500}
_EXTENSIONS = {"json": "json", "jsonl": "jsonl", "csv": "csv", "pdf": "pdf"}


class AuditEvent(msgspec.Struct):
    audit_id: UUID
    tenant_id: UUID
    timestamp: datetime
    event_type: str
    event_category: str
    actor_id: str | None
    actor_type: str | None
    action: str
    result: str
    target_resource: str | None
    target_id: str | None
    details: msgspec.Raw | None  # the stored JSON object, sent as it is
    ip_address: str | None
    user_agent: str | None
    session_id: str | None
    error_message: str | None
    constitutional_validation_passed: bool
    constitutional_hash: str
    chain_seq: int | None
    row_hash: str | None


class AuditLogPage(msgspec.Struct):
    audit_events: list[AuditEvent]
    total: int | None  # null on cursor pages; at most 1,000 (see total_exact)
    total_exact: bool
    limit: int
    offset: int
    next_cursor: str | None
    constitutional_hash: str


class ExportAccepted(msgspec.Struct):
    export_id: str
    status: str
    format: str
    estimated_completion: datetime
    status_url: str
    download_url: None
    constitutional_hash: str


class ExportStatus(msgspec.Struct):
    export_id: str
    tenant_id: UUID
    format: str
    status: str
    progress: int
    filters: dict[str, Any]
    total_rows: int | None
    rows_written: int
    sha256: str | None
    size_bytes: int | None
    chain_head: dict[str, Any] | None
    error: str | None
    created_at: datetime
    completed_at: datetime | None
    expires_at: datetime | None
    download_url: str | None
    constitutional_hash: str


class RetentionRequest(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """A change of retention or legal hold (at least one field; the rest stay as they are)."""

    retention_days: (
        Annotated[int, documented(minimum=1, maximum=MAX_RETENTION_DAYS)] | UnsetType
    ) = UNSET
    legal_hold: bool | UnsetType = UNSET
    legal_hold_reason: (
        Annotated[str, documented(maxLength=MAX_HOLD_REASON, pattern=r"^[^\x00-\x1f]*$")]
        | UnsetType
        | None
    ) = UNSET
    constitutional_hash: HashValue | UnsetType = UNSET

    def changes(self) -> dict[str, Any]:
        return {
            f: getattr(self, f)
            for f in self.__struct_fields__
            if f != "constitutional_hash" and getattr(self, f) is not UNSET
        }


RETENTION_FIELDS = ("retention_days", "legal_hold", "legal_hold_reason")


class Retention(msgspec.Struct):
    tenant_id: UUID
    retention_days: int
    legal_hold: bool
    legal_hold_reason: str | None
    constitutional_hash: str


def _event(row: Mapping[str, Any]) -> AuditEvent:
    values = dict(row)
    if values["ip_address"] is not None:
        values["ip_address"] = str(values["ip_address"])
    if values["details"] is not None:
        values["details"] = msgspec.Raw(values["details"].encode())
    return AuditEvent(**values)


def _time_range(
    query: Mapping[str, str], max_days: int, errors: list[dict[str, str]]
) -> dict[str, datetime]:
    times: dict[str, datetime] = {}
    for name in ("start_time", "end_time"):
        raw = query.get(name)
        if not raw:
            errors.append({"field": name, "message": "is required (ISO 8601)", "source": "query"})
            continue
        try:
            value = datetime.fromisoformat(raw.replace("Z", "+00:00").replace(" ", "+"))
        except ValueError:
            errors.append({"field": name, "message": "must be ISO 8601", "source": "query"})
            continue
        times[name] = value if value.tzinfo else value.replace(tzinfo=UTC)
    if len(times) == 2:
        if times["end_time"] <= times["start_time"]:
            errors.append(
                {"field": "end_time", "message": "must be after start_time", "source": "query"}
            )
        elif times["end_time"] - times["start_time"] > timedelta(days=max_days):
            errors.append(
                {
                    "field": "end_time",
                    "message": f"the span may be at most {max_days} days",
                    "source": "query",
                }
            )
    return times


def parse_filters(
    query: Mapping[str, str], max_days: int, *, allow_tenant: bool = False
) -> tuple[AuditFilters, list[dict[str, str]]]:
    """The filters of a query or export, and every problem with them (none: the list is empty)."""
    errors: list[dict[str, str]] = []
    times = _time_range(query, max_days, errors)
    category, result = query.get("event_category"), query.get("result")
    if category is not None and category not in CATEGORIES:
        errors.append(
            {
                "field": "event_category",
                "message": f"one of {', '.join(CATEGORIES)}",
                "source": "query",
            }
        )
    if result is not None and result not in RESULTS:
        errors.append(
            {"field": "result", "message": f"one of {', '.join(RESULTS)}", "source": "query"}
        )
    texts = {}
    for name, longest in _TEXT_FILTERS.items():
        value = query.get(name)
        if value is not None and (not 1 <= len(value) <= longest or not _storable(value)):
            errors.append(
                {"field": name, "message": f"1 to {longest} characters", "source": "query"}
            )
        texts[name] = value
    tenant_id = None
    if allow_tenant and query.get("tenant_id"):
        try:
            tenant_id = UUID(query["tenant_id"])
        except ValueError:
            errors.append({"field": "tenant_id", "message": "must be a UUID", "source": "query"})
    now = datetime.now(UTC)
    filters = AuditFilters(
        start_time=times.get("start_time", now),
        end_time=times.get("end_time", now),
        event_category=category,
        result=result,
        tenant_id=tenant_id,
        **texts,
    )
    return filters, errors


def _int_param(
    query: Mapping[str, str], name: str, default: int, low: int, high: int, errors: list[Any]
) -> int:
    raw = query.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        value = low - 1
    if not low <= value <= high:
        errors.append({"field": name, "message": f"an integer {low}..{high}", "source": "query"})
        return default
    return value


def _raise(errors: list[dict[str, str]]) -> None:
    if errors:
        names = ", ".join(e["field"] for e in errors)
        raise ValidationFailed(f"invalid query parameters: {names}", {"fields": errors})


def _page_params(query: Mapping[str, str]) -> tuple[int, int, str | None, list[Any]]:
    errors: list[Any] = []
    limit = _int_param(query, "limit", DEFAULT_LIMIT, 1, MAX_LIMIT, errors)
    offset = _int_param(query, "offset", 0, 0, MAX_OFFSET, errors)
    after = query.get("after") or None
    if after is not None and len(after) > 200:
        errors.append({"field": "after", "message": "is not a cursor", "source": "query"})
    return limit, offset, after, errors


def _link(request: Request[Any, Any, Any], cursor: str | None) -> dict[str, str]:
    if cursor is None:
        return {}
    params = {k: v for k, v in request.query_params.items() if k not in {"after", "offset"}}
    params["after"] = cursor
    from urllib.parse import urlencode  # noqa: PLC0415

    return {"Link": f'<{request.url.path}?{urlencode(params)}>; rel="next"'}


def _paths(tenant_id: UUID, export_id: str) -> tuple[str, str]:
    status = f"/v1/tenants/{tenant_id}/audit-log/exports/{export_id}"
    return status, status + "/download"


class AuditLogController(Controller):
    path = "/tenants/{tenant_id:uuid}/audit-log"
    tags = ["audit"]  # noqa: RUF012

    @get(
        "/",
        summary="Query a tenant's audit log",
        description="AUDITOR, JUDICIAL or EXECUTIVE of the tenant, or a platform principal. "
        "start_time and end_time (ISO 8601) are required; newest first; limit (default 100, "
        "max 1000) with offset, or the keyset cursor `after` (next_cursor; Link rel=next).",
        responses={
            200: ResponseSpec(AuditLogPage, description="A page of audit rows, newest first"),
            **ex.refusals("VALIDATION_ERROR", "NOT_FOUND", "FORBIDDEN"),
        },
    )
    async def query_audit_log(
        self,
        request: Request[Any, Any, Any],
        tenant_id: UUID,
        principal: Principal,
        api: ApiServices,
        start_time: Start = None,
        end_time: End = None,
        event_category: Category = None,
        actor_id: Actor = None,
        result: Result = None,
        event_type: EventType = None,
        target_resource: Target = None,
        limit: Limit = None,
        offset: Offset = None,
        after: After = None,
    ) -> Response[AuditLogPage]:
        authorize(principal, Permission.AUDIT_READ, tenant_id)
        await _existing(api, tenant_id)
        query = _given(
            start_time=start_time,
            end_time=end_time,
            event_category=event_category,
            actor_id=actor_id,
            result=result,
            event_type=event_type,
            target_resource=target_resource,
            limit=limit,
            offset=offset,
            after=after,
        )
        filters, errors = parse_filters(query, api.system.settings.audit_query_max_days)
        rows, skip, cursor, more = _page_params(query)
        _raise(errors + more)
        page = await audit_page(
            partial(api.database.fetch_sets, tenant_id),
            filters,
            limit=rows,
            offset=skip,
            after=cursor,
        )
        body = AuditLogPage(
            audit_events=[_event(r) for r in page.rows],
            total=page.total,
            total_exact=page.total_exact,
            limit=rows,
            offset=skip,
            next_cursor=page.next_cursor,
            constitutional_hash=api.constitutional_hash,
        )
        return Response(body, headers=_link(request, page.next_cursor))

    @get(
        "/export",
        status_code=202,
        summary="Export a tenant's audit log (a background job)",
        description="format json (default), jsonl, csv or pdf, with the query's filters. "
        "Answers 202 with the export id and its status URL; the export is audited.",
        responses={
            202: ResponseSpec(ExportAccepted, description="Export queued"),
            **ex.refusals("VALIDATION_ERROR", "NOT_FOUND", "FORBIDDEN"),
        },
    )
    async def export_audit_log(
        self,
        tenant_id: UUID,
        principal: Principal,
        api: ApiServices,
        start_time: Start = None,
        end_time: End = None,
        event_category: Category = None,
        actor_id: Actor = None,
        result: Result = None,
        event_type: EventType = None,
        target_resource: Target = None,
        format: Format = None,
    ) -> Response[ExportAccepted]:
        authorize(principal, Permission.AUDIT_EXPORT, tenant_id)
        await _existing(api, tenant_id)
        query = _given(
            start_time=start_time,
            end_time=end_time,
            event_category=event_category,
            actor_id=actor_id,
            result=result,
            event_type=event_type,
            target_resource=target_resource,
            format=format,
        )
        filters, errors = parse_filters(query, api.system.settings.audit_query_max_days)
        export_format = query.get("format", "json")
        if export_format not in FORMATS:
            errors.append(
                {"field": "format", "message": f"one of {', '.join(FORMATS)}", "source": "query"}
            )
        _raise(errors)
        job = await start_export(api, principal, tenant_id, filters, export_format)
        export_id = job["export_id"]
        status_url, _ = _paths(tenant_id, export_id)
        body = ExportAccepted(
            export_id=export_id,
            status=job["status"],
            format=export_format,
            estimated_completion=job["created_at"] + timedelta(seconds=5),
            status_url=status_url,
            download_url=None,
            constitutional_hash=api.constitutional_hash,
        )
        return Response(body, status_code=202, headers={"Location": status_url})

    @get(
        "/exports/{export_id:str}",
        summary="An audit export's status and progress",
        responses={**ex.refusals("NOT_FOUND", "FORBIDDEN")},
    )
    async def export_status(
        self, tenant_id: UUID, export_id: str, principal: Principal, api: ApiServices
    ) -> ExportStatus:
        authorize(principal, Permission.AUDIT_EXPORT, tenant_id)
        row = await export_job(api, tenant_id, export_id)
        _, download = _paths(tenant_id, export_id)
        return ExportStatus(
            export_id=row["export_id"],
            tenant_id=row["tenant_id"],
            format=row["format"],
            status=row["status"],
            progress=row["progress"],
            filters=row["filters"],
            total_rows=row["total_rows"],
            rows_written=row["rows_written"],
            sha256=row["sha256"],
            size_bytes=row["size_bytes"],
            chain_head=row["chain_head"],
            error=row["error"],
            created_at=row["created_at"],
            completed_at=row["completed_at"],
            expires_at=row["expires_at"],
            download_url=download if row["status"] == "completed" else None,
            constitutional_hash=api.constitutional_hash,
        )

    @get(
        "/exports/{export_id:str}/download",
        summary="Download an audit export's file",
        description="Streamed; the file's SHA-256 in X-Content-SHA256 (hex) and Repr-Digest.",
        responses={
            200: ResponseSpec(bytes, description="The file", media_type="application/octet-stream"),
            **ex.refusals("NOT_FOUND", "FORBIDDEN", "EXPORT_NOT_READY", "EXPORT_EXPIRED"),
        },
    )
    async def download_export(
        self, tenant_id: UUID, export_id: str, principal: Principal, api: ApiServices
    ) -> Stream:
        authorize(principal, Permission.AUDIT_EXPORT, tenant_id)
        return export_file(api, tenant_id, await export_job(api, tenant_id, export_id))

    @get(
        "/retention",
        summary="A tenant's audit retention and legal hold",
        responses={**ex.refusals("NOT_FOUND", "FORBIDDEN")},
    )
    async def get_retention(
        self, tenant_id: UUID, principal: Principal, api: ApiServices
    ) -> Retention:
        authorize(principal, Permission.AUDIT_READ, tenant_id)
        await _existing(api, tenant_id)
        current = await _retention(api, tenant_id)
        return Retention(
            tenant_id=tenant_id, constitutional_hash=api.constitutional_hash, **current.as_dict()
        )

    @put(
        "/retention",
        summary="Change a tenant's audit retention or legal hold",
        description="Platform EXECUTIVE only. Body: retention_days (1..36500), legal_hold, "
        "legal_hold_reason; the change is audited in the tenant's log.",
        responses={**ex.refusals("VALIDATION_ERROR", "NOT_FOUND", "FORBIDDEN", *ex.WRITE)},
    )
    async def put_retention(
        self,
        request: Request[Any, Any, Any],
        tenant_id: UUID,
        data: Annotated[
            RetentionRequest,
            Body(schema_extra={"any_of": [Schema(required=[f]) for f in RETENTION_FIELDS]}),
        ],
        principal: Principal,
        api: ApiServices,
        constitutional_hash: HashHeader = None,
    ) -> Retention:
        changes = data.changes()
        ctx = command_context(request, principal, data.constitutional_hash, constitutional_hash)
        await _existing(api, tenant_id)
        current = await _retention(api, tenant_id)
        audit = api.system.audit
        settings = await in_thread(
            partial(audit.change_retention, ctx, tenant_id, current, changes)
        )
        return Retention(
            tenant_id=tenant_id, constitutional_hash=api.constitutional_hash, **settings.as_dict()
        )


async def start_export(
    api: ApiServices,
    principal: Principal,
    tenant_id: UUID,
    filters: AuditFilters,
    export_format: str,
) -> dict[str, Any]:
    """Audit the export, then queue its job (the caller has authorized it); the job's row."""
    export_id = new_export_id()
    audit = api.system.audit
    await in_thread(
        partial(
            audit.record_export,
            principal,
            tenant_id,
            export_id,
            {"format": export_format, "filters": filters.as_dict()},
        )
    )
    async with api.database.tenant_session(tenant_id) as conn:
        return await queue_export(
            conn,
            export_id=export_id,
            tenant_id=tenant_id,
            requested_by=principal.sub,
            export_format=export_format,
            filters=filters,
        )


async def export_job(api: ApiServices, tenant_id: UUID, export_id: str) -> dict[str, Any]:
    """An export's job row as the tenant sees it (404 for an unknown id)."""
    if not EXPORT_ID.fullmatch(export_id):
        raise NotFound("export not found", {"export_id": export_id[:40]})
    async with api.database.tenant_session(tenant_id) as conn:
        row = await export_status(conn, export_id)
    if row is None:
        raise NotFound("export not found", {"export_id": export_id})
    return row


def export_file(api: ApiServices, tenant_id: UUID, row: dict[str, Any]) -> Stream:
    """A completed export's file, streamed with its digest and file name (409 while it is not
    ready, 410 once it has expired)."""
    export_id = row["export_id"]
    if row["status"] == "expired":
        raise ExportExpired(
            "the export's file has expired; start a new export",
            {"export_id": export_id, "expired_at": row["expires_at"].isoformat()},
        )
    if row["status"] != "completed":
        raise ExportNotReady(
            "the export has not completed",
            {"export_id": export_id, "status": row["status"], "progress": row["progress"]},
        )
    size, digest = int(row["size_bytes"]), row["sha256"]

    async def chunks() -> AsyncIterator[bytes]:
        async with api.database.tenant_session(tenant_id) as conn:
            async for chunk in export_chunks(conn, export_id, size):
                yield chunk

    b64 = base64.b64encode(bytes.fromhex(digest)).decode()
    filename = f"audit-{tenant_id}-{export_id}.{_EXTENSIONS[row['format']]}"
    return Stream(
        chunks(),
        media_type=MEDIA_TYPES[row["format"]],
        headers={
            SHA256_HEADER: digest,
            "Repr-Digest": f"sha-256=:{b64}:",
            "Content-Length": str(size),
            "Content-Disposition": f'attachment; filename="{filename}"',
        },
    )


async def _existing(api: ApiServices, tenant_id: UUID) -> None:
    """404 for a tenant that does not exist (or was purged), as the tenant routes answer."""
    if await api.directory.row(tenant_id) is None:
        raise NotFound("tenant not found", {"tenant_id": str(tenant_id)})


async def _retention(api: ApiServices, tenant_id: UUID) -> RetentionSettings:
    row = await api.database.fetch_one_as_tenant(
        tenant_id,
        "SELECT retention_days, legal_hold, legal_hold_reason FROM audit_settings "
        "WHERE tenant_id = %s",
        [tenant_id],
    )
    if row is None:
        return RetentionSettings()
    return RetentionSettings(row["retention_days"], row["legal_hold"], row["legal_hold_reason"])


class PlatformAuditLogController(Controller):
    path = "/audit-log"
    tags = ["audit"]  # noqa: RUF012

    @get(
        "/",
        summary="Query the audit log across tenants",
        description="Platform principals with AUDITOR, JUDICIAL or EXECUTIVE. The same filters "
        "as a tenant's query, plus tenant_id. Every such query is itself audited.",
        responses={
            200: ResponseSpec(AuditLogPage, description="A page of audit rows, newest first"),
            **ex.refusals("VALIDATION_ERROR", "FORBIDDEN"),
        },
    )
    async def query_all(
        self,
        request: Request[Any, Any, Any],
        principal: Principal,
        api: ApiServices,
        start_time: Start = None,
        end_time: End = None,
        event_category: Category = None,
        actor_id: Actor = None,
        result: Result = None,
        event_type: EventType = None,
        target_resource: Target = None,
        limit: Limit = None,
        offset: Offset = None,
        after: After = None,
        tenant_id: TenantFilter = None,
    ) -> Response[AuditLogPage]:
        authorize(principal, Permission.AUDIT_READ_ALL)
        query = _given(
            start_time=start_time,
            end_time=end_time,
            event_category=event_category,
            actor_id=actor_id,
            result=result,
            event_type=event_type,
            target_resource=target_resource,
            limit=limit,
            offset=offset,
            after=after,
            tenant_id=tenant_id,
        )
        filters, errors = parse_filters(
            query, api.system.settings.audit_query_max_days, allow_tenant=True
        )
        rows, skip, cursor, more = _page_params(query)
        _raise(errors + more)
        audit = api.system.audit
        await in_thread(
            partial(
                audit.record_cross_tenant_query,
                principal,
                {**filters.as_dict(), "limit": rows, "offset": skip},
            )
        )
        page = await audit_page(
            partial(api.database.fetch_sets, None), filters, limit=rows, offset=skip, after=cursor
        )
        body = AuditLogPage(
            audit_events=[_event(r) for r in page.rows],
            total=page.total,
            total_exact=page.total_exact,
            limit=rows,
            offset=skip,
            next_cursor=page.next_cursor,
            constitutional_hash=api.constitutional_hash,
        )
        return Response(body, headers=_link(request, page.next_cursor))


def document_required_query(document: Any) -> None:
    """State in the OpenAPI document that queries and exports need `start_time` and `end_time`
    (the handlers take them as optional so that one VALIDATION_ERROR lists every problem)."""
    for path, item in (document.paths or {}).items():
        if "/audit-log" not in path or item.get is None:
            continue
        for parameter in item.get.parameters or []:
            if getattr(parameter, "name", None) in REQUIRED_QUERY:
                parameter.required = True
