"""The console's audit-log pages: a tenant's log, and every tenant's for platform principals,
with the API's filters, keyset-cursor paging (next and previous), one event's detail, a chart
of events over time (its data from a JSON route read by static/audit.js), and exports that are
started, followed and downloaded here. Everything goes through what `/v1/.../audit-log` uses:
`parse_filters`, `audit_page`, the export jobs, and the audit entries of exports and
cross-tenant reads."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any
from urllib.parse import urlencode
from uuid import UUID

from litestar import MediaType, Request, Response, get, post
from litestar.response import Redirect, Stream

from api.console.permissions import may
from api.console.principal import SignedIn
from api.console.rendering import PREFIX, api_of, page, read_form, tenant_row, who_of
from api.http.audit import export_file, export_job, parse_filters, start_export
from api.http.command_calls import in_thread
from api.http.services import ApiServices
from commands.authorization import Permission, authorize
from domain.audit import CATEGORIES, RESULTS
from domain.errors import DomainError, NotFound, ValidationFailed
from projections.audit_formats import FORMATS
from projections.audit_queries import (
    AuditFilters,
    FetchSets,
    audit_page,
    audit_timeline,
    timeline_step,
)

FILTERS = (
    "start_time",
    "end_time",
    "event_category",
    "result",
    "event_type",
    "actor_id",
    "target_resource",
)
PAGE_SIZES = (25, 50, 100, 250)
DEFAULT_SIZE = 50
DEFAULT_DAYS = 7
MAX_BACK = 30  # earlier pages remembered for "Previous"; "First page" is always there
MAX_CURSOR = 200
FORMAT_LABELS = {"csv": "CSV", "jsonl": "JSON Lines", "json": "JSON", "pdf": "PDF"}
RUNNING = ("queued", "processing")


@dataclass
class Query:
    """What the filter form asked for, as typed, and what it means."""

    values: dict[str, str]
    filters: AuditFilters
    limit: int
    after: str | None
    back: list[str]
    errors: dict[str, str] = field(default_factory=dict)

    def link(self, base: str, *, after: str | None, back: list[str]) -> str:
        pairs = [(k, v) for k, v in self.values.items() if v]
        pairs.append(("limit", str(self.limit)))
        pairs += [("back", b) for b in back[-MAX_BACK:]]
        if after:
            pairs.append(("after", after))
        return f"{base}?{urlencode(pairs)}"

    def filter_query(self) -> str:
        return urlencode([(k, v) for k, v in self.values.items() if v])


def _stamp(at: datetime) -> str:
    """A time as the form's datetime-local field shows it (UTC, to the second)."""
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S")


def read_query(source: Any, max_days: int, *, across_tenants: bool = False) -> Query:
    """The filters, page size and cursor of a query string or form, every bad one listed."""
    names = (*FILTERS, "tenant_id") if across_tenants else FILTERS
    values = {k: str(source.get(k) or "").strip() for k in names}
    if not values["start_time"] and not values["end_time"]:
        end = datetime.now(UTC).replace(microsecond=0) + timedelta(minutes=1)
        values["start_time"] = _stamp(end - timedelta(days=DEFAULT_DAYS))
        values["end_time"] = _stamp(end)
    filters, problems = parse_filters(
        {k: v for k, v in values.items() if v}, max_days, allow_tenant=across_tenants
    )
    errors = {p["field"]: p["message"] for p in problems}
    raw_limit = str(source.get("limit") or DEFAULT_SIZE)
    limit = int(raw_limit) if raw_limit.isdigit() and int(raw_limit) in PAGE_SIZES else 0
    if not limit:
        errors["limit"] = f"one of {', '.join(map(str, PAGE_SIZES))}"
        limit = DEFAULT_SIZE
    after = str(source.get("after") or "") or None
    if after is not None and len(after) > MAX_CURSOR:
        errors["after"] = "is not a cursor"
    getall = getattr(source, "getall", None)
    back = [b for b in (getall("back", []) if getall else []) if b and len(b) <= MAX_CURSOR]
    return Query(values, filters, limit, after, back[-MAX_BACK:], errors)


@dataclass(frozen=True)
class Scope:
    """Whose log a page reads: one tenant's (its session), or every tenant's."""

    tenant: Any | None  # the tenant's read-model row; None: across tenants
    base: str

    @property
    def tail(self) -> str:
        """The path under /console (templates write the prefix themselves)."""
        return self.base.removeprefix(PREFIX)

    def fetch(self, api: ApiServices) -> FetchSets:
        tenant_id = None if self.tenant is None else self.tenant["tenant_id"]
        return partial(api.database.fetch_sets, tenant_id)


async def _tenant_scope(
    request: Request[Any, Any, Any], who: SignedIn, tenant_id: UUID, permission: Permission
) -> Scope:
    authorize(who.principal, permission, tenant_id)
    row = await tenant_row(request, tenant_id)
    return Scope(row, f"{PREFIX}/tenants/{tenant_id}/audit")


async def _platform_scope(api: ApiServices, who: SignedIn, what: dict[str, Any]) -> Scope:
    """Reads across tenants are themselves audited, as `GET /v1/audit-log` is."""
    authorize(who.principal, Permission.AUDIT_READ_ALL)
    audit = api.system.audit
    await in_thread(partial(audit.record_cross_tenant_query, who.principal, what))
    return Scope(None, f"{PREFIX}/audit")


async def _log_page(
    request: Request[Any, Any, Any], who: SignedIn, scope: Scope, query: Query
) -> Response[str]:
    api = api_of(request)
    rows: list[dict[str, Any]] = []
    total, exact, next_cursor = None, True, None
    if not query.errors:
        try:
            found = await audit_page(
                scope.fetch(api), query.filters, limit=query.limit, after=query.after
            )
        except DomainError as refused:  # a cursor this service did not issue
            query.errors.update(
                {p["field"]: p["message"] for p in refused.details.get("fields", [])}
                or {"after": refused.message}
            )
        else:
            rows, total, exact, next_cursor = (
                found.rows,
                found.total,
                found.total_exact,
                found.next_cursor,
            )
    back = query.back
    previous = None
    if query.after:
        previous = query.link(scope.tail, after=back[-1] if back else None, back=back[:-1])
    following = None
    if next_cursor:
        following = query.link(
            scope.tail, after=next_cursor, back=[*back, query.after] if query.after else back
        )
    return page(
        request,
        "audit_log.html",
        who=who,
        status=422 if query.errors else 200,
        scope=scope,
        tenant=scope.tenant,
        query=query,
        values=query.values,
        errors=query.errors,
        rows=rows,
        total=total,
        total_exact=exact,
        page_number=len(back) + (2 if query.after else 1),
        first=query.link(scope.tail, after=None, back=[]) if query.after else None,
        previous=previous,
        following=following,
        categories=CATEGORIES,
        results=RESULTS,
        page_sizes=PAGE_SIZES,
        formats=[(f, FORMAT_LABELS[f]) for f in FORMATS],
        may_export=scope.tenant is not None
        and may(who.principal, Permission.AUDIT_EXPORT, scope.tenant["tenant_id"]),
    )


def _max_days(request: Request[Any, Any, Any]) -> int:
    days: int = api_of(request).system.settings.audit_query_max_days
    return days


@get("/tenants/{tenant_id:uuid}/audit")
async def tenant_audit_page(request: Request[Any, Any, Any], tenant_id: UUID) -> Response[str]:
    who = await who_of(request)
    scope = await _tenant_scope(request, who, tenant_id, Permission.AUDIT_READ)
    return await _log_page(
        request, who, scope, read_query(request.query_params, _max_days(request))
    )


@get("/audit")
async def platform_audit_page(request: Request[Any, Any, Any]) -> Response[str]:
    who = await who_of(request)
    query = read_query(request.query_params, _max_days(request), across_tenants=True)
    authorize(who.principal, Permission.AUDIT_READ_ALL)
    if query.errors:
        scope = Scope(None, f"{PREFIX}/audit")
    else:
        what = {**query.filters.as_dict(), "limit": query.limit, "via": "console"}
        scope = await _platform_scope(api_of(request), who, what)
    return await _log_page(request, who, scope, query)


async def _timeline(request: Request[Any, Any, Any], scope: Scope, query: Query) -> Response[Any]:
    if query.errors:
        raise ValidationFailed.listing(
            [{"field": k, "message": v} for k, v in sorted(query.errors.items())]
        )
    step = timeline_step(query.filters)
    counts = await audit_timeline(scope.fetch(api_of(request)), query.filters, step)
    start, end = query.filters.start_time, query.filters.end_time
    buckets = max(1, -(-(end - start) // step))
    series: dict[str, list[int]] = {r: [0] * buckets for r in RESULTS}
    for row in counts:
        index = int((row["at"] - start) // step)
        if 0 <= index < buckets and row["result"] in series:
            series[row["result"]][index] += int(row["n"])
    body = {
        "step_seconds": int(step.total_seconds()),
        "t": [int((start + i * step).timestamp()) for i in range(buckets)],
        "series": series,
        "total": sum(sum(v) for v in series.values()),
    }
    return Response(json.dumps(body), media_type=MediaType.JSON)


@get("/tenants/{tenant_id:uuid}/audit/timeline")
async def tenant_audit_timeline(request: Request[Any, Any, Any], tenant_id: UUID) -> Response[Any]:
    who = await who_of(request)
    scope = await _tenant_scope(request, who, tenant_id, Permission.AUDIT_READ)
    return await _timeline(request, scope, read_query(request.query_params, _max_days(request)))


@get("/audit/timeline")
async def platform_audit_timeline(request: Request[Any, Any, Any]) -> Response[Any]:
    who = await who_of(request)
    query = read_query(request.query_params, _max_days(request), across_tenants=True)
    authorize(who.principal, Permission.AUDIT_READ_ALL)
    what = {**query.filters.as_dict(), "timeline": True, "via": "console"}
    scope = await _platform_scope(api_of(request), who, what) if not query.errors else None
    return await _timeline(request, scope or Scope(None, f"{PREFIX}/audit"), query)


async def _event_page(
    request: Request[Any, Any, Any], who: SignedIn, scope: Scope, audit_id: UUID
) -> Response[str]:
    """One row, found by its time (`at`, from the list's link) and id with the list's query."""
    raw = request.query_params.get("at", "")
    try:
        at = datetime.fromisoformat(raw)
    except ValueError:
        raise ValidationFailed.field("at", "must be the event's time (ISO 8601)") from None
    if at.tzinfo is None:
        at = at.replace(tzinfo=UTC)
    filters = AuditFilters(start_time=at, end_time=at + timedelta(microseconds=1))
    found = await audit_page(scope.fetch(api_of(request)), filters, limit=1000)
    row = next((r for r in found.rows if r["audit_id"] == audit_id), None)
    if row is None:
        raise NotFound("audit event not found", {"audit_id": str(audit_id)})
    details = row["details"]
    if details is not None:
        details = json.dumps(json.loads(details), indent=2, sort_keys=True, ensure_ascii=False)
    return page(
        request,
        "audit_event.html",
        who=who,
        scope=scope,
        tenant=scope.tenant,
        event=row,
        details=details,
    )


@get("/tenants/{tenant_id:uuid}/audit/events/{audit_id:uuid}")
async def tenant_audit_event(
    request: Request[Any, Any, Any], tenant_id: UUID, audit_id: UUID
) -> Response[str]:
    who = await who_of(request)
    scope = await _tenant_scope(request, who, tenant_id, Permission.AUDIT_READ)
    return await _event_page(request, who, scope, audit_id)


@get("/audit/events/{audit_id:uuid}")
async def platform_audit_event(request: Request[Any, Any, Any], audit_id: UUID) -> Response[str]:
    who = await who_of(request)
    what = {"audit_id": str(audit_id), "via": "console"}
    scope = await _platform_scope(api_of(request), who, what)
    return await _event_page(request, who, scope, audit_id)


@post("/tenants/{tenant_id:uuid}/audit/exports")
async def start_tenant_export(request: Request[Any, Any, Any], tenant_id: UUID) -> Response[Any]:
    who = await who_of(request)
    scope = await _tenant_scope(request, who, tenant_id, Permission.AUDIT_EXPORT)
    form = await read_form(request)
    query = read_query(form, _max_days(request))
    export_format = form.get("format", "")
    if export_format not in FORMATS:
        query.errors["format"] = f"one of {', '.join(FORMATS)}"
    if query.errors:
        return await _log_page(request, who, scope, query)
    job = await start_export(
        api_of(request), who.principal, tenant_id, query.filters, export_format
    )
    return Redirect(f"{scope.base}/exports/{job['export_id']}", status_code=303)


@get("/tenants/{tenant_id:uuid}/audit/exports/{export_id:str}")
async def tenant_export_page(
    request: Request[Any, Any, Any], tenant_id: UUID, export_id: str
) -> Response[str]:
    who = await who_of(request)
    scope = await _tenant_scope(request, who, tenant_id, Permission.AUDIT_EXPORT)
    job = await export_job(api_of(request), tenant_id, export_id)
    return page(
        request,
        "audit_export.html",
        who=who,
        tenant=scope.tenant,
        scope=scope,
        job=job,
        running=job["status"] in RUNNING,
        format_label=FORMAT_LABELS.get(job["format"], job["format"]),
        filters=sorted(job["filters"].items()),
    )


@get("/tenants/{tenant_id:uuid}/audit/exports/{export_id:str}/download")
async def tenant_export_download(
    request: Request[Any, Any, Any], tenant_id: UUID, export_id: str
) -> Stream:
    who = await who_of(request)
    await _tenant_scope(request, who, tenant_id, Permission.AUDIT_EXPORT)
    api = api_of(request)
    return export_file(api, tenant_id, await export_job(api, tenant_id, export_id))


ROUTES = [
    tenant_audit_page,
    platform_audit_page,
    tenant_audit_timeline,
    platform_audit_timeline,
    tenant_audit_event,
    platform_audit_event,
    start_tenant_export,
    tenant_export_page,
    tenant_export_download,
]
