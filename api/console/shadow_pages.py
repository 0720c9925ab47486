"""The console's shadow-mode pages: the tenant's rollout (the current step, agreement over time,
disagreements by kind, latency, the rollback rule), the buttons that configure it, request a
step, approve it and roll it back (each refused by the command exactly as over the JSON API,
and the refusal shown on the page with its evidence), and the `shadow_mode` replay runs."""

from __future__ import annotations

from functools import partial
from typing import Any
from uuid import UUID

from litestar import Request, Response, get, post

from api.console.charts import by_category, over_time, percent
from api.console.principal import SignedIn
from api.console.rendering import (
    PREFIX,
    api_of,
    context_of,
    field_errors,
    go,
    page,
    read_form,
    tenant_row,
    who_of,
)
from api.http.command_calls import in_thread
from api.http.errors import status_of
from commands.authorization import PERMISSIONS, Permission, authorize
from commands.context import CommandContext
from commands.shadow import ShadowService
from domain.errors import DomainError, NotFound, ValidationFailed
from domain.shadow.rollout import STEPS
from projections.migrations import find_job, job_failures, list_jobs, progress_percentage

REPLAY = "shadow_mode"
MAX_REASON = 500
RUNS_SHOWN = 50
KINDS = {
    "legacy_allow_rego_deny": "Missed violation: legacy allowed, Rego denies (critical)",
    "legacy_deny_rego_allow": "Legacy denied, Rego allows",
    "rego_error": "Rego could not decide (critical)",
}
SHORT = {  # a chart's category labels: they fit under the bars on a phone
    "legacy_allow_rego_deny": "missed violation",
    "legacy_deny_rego_allow": "Rego allows",
    "rego_error": "Rego error",
}


def _service(request: Request[Any, Any, Any]) -> ShadowService:
    service = api_of(request).system.shadow
    assert service is not None  # built by api.bootstrap.build
    return service


def roles_of(permission: Permission) -> str:
    return ", ".join(sorted(role.value for role in PERMISSIONS[permission].roles))


def _kinds_chart(disagreements: dict[str, int]) -> dict[str, Any]:
    return by_category({SHORT[k]: disagreements.get(k, 0) for k in KINDS}, "Decisions")


def _agreement_chart(series: list[list[Any]]) -> dict[str, Any]:
    return over_time(
        [at for at, _ in series],
        {"Agreement (%)": [percent(rate) for _, rate in series]},
        unit="%",
        y_range=(0, 100),
    )


async def _status(request: Request[Any, Any, Any], who: SignedIn, tenant_id: UUID) -> Any:
    try:
        return await in_thread(partial(_service(request).status, who.principal, tenant_id))
    except NotFound:
        return None  # not configured yet (the tenant itself was checked before)


async def _runs(request: Request[Any, Any, Any], tenant_id: UUID) -> list[dict[str, Any]]:
    async with api_of(request).database.tenant_session(tenant_id) as conn:
        rows, _ = await list_jobs(conn, status=None, job_type=REPLAY, limit=RUNS_SHOWN, offset=0)
    for row in rows:
        row["progress_percentage"] = progress_percentage(row["processed_items"], row["total_items"])
    return rows


async def _shadow_page(
    request: Request[Any, Any, Any],
    who: SignedIn,
    tenant_id: UUID,
    *,
    refusal: DomainError | None = None,
    values: dict[str, str] | None = None,
) -> Response[str]:
    authorize(who.principal, Permission.SHADOW_READ, tenant_id)
    row = await tenant_row(request, tenant_id)
    status = await _status(request, who, tenant_id)
    charts = {}
    if status is not None:
        charts = {
            "agreement": _agreement_chart(status["all_time"]["agreement_series"]),
            "kinds": _kinds_chart(status["all_time"]["disagreements"]),
        }
    errors = field_errors(refusal) if refusal else {}
    return page(
        request, "shadow.html", who=who, tenant=row, shadow=status, charts=charts,
        runs=await _runs(request, tenant_id), steps=STEPS, kinds=KINDS, refusal=refusal,
        errors=errors, values=values or {}, percent=percent,
        route_roles=roles_of(Permission.SHADOW_ROUTE),
        approve_roles=roles_of(Permission.SHADOW_APPROVE),
        status=status_of(refusal.code) if refusal else 200,
    )  # fmt: skip


@get("/tenants/{tenant_id:uuid}/shadow")
async def shadow_page(request: Request[Any, Any, Any], tenant_id: UUID) -> Response[str]:
    return await _shadow_page(request, await who_of(request), tenant_id)


def _command(
    shadow: ShadowService, ctx: CommandContext, tenant_id: UUID, form: dict[str, str]
) -> partial[Any]:
    """The service call a form asks for; its fields checked as the JSON body's are."""
    action = form.get("action", "")
    if action == "configure":
        return partial(shadow.configure, ctx, tenant_id, form.get("policy_id", "").strip(), None)
    if action == "request_step":
        try:
            target = int(form.get("target", ""))
        except ValueError:
            raise ValidationFailed.field("target", "must be a whole number") from None
        return partial(shadow.request_step, ctx, tenant_id, target)
    if action == "approve":
        return partial(shadow.approve, ctx, tenant_id)
    if action == "roll_back":
        reason = form.get("reason", "").strip() or "rolled back by hand"
        if len(reason) > MAX_REASON:
            raise ValidationFailed.field("reason", f"at most {MAX_REASON} characters")
        return partial(shadow.roll_back, ctx, tenant_id, reason)
    raise ValidationFailed.field("action", "must be configure, request_step, approve or roll_back")


@post("/tenants/{tenant_id:uuid}/shadow")
async def shadow_command(request: Request[Any, Any, Any], tenant_id: UUID) -> Response[Any]:
    who = await who_of(request)
    form = await read_form(request)
    authorize(who.principal, Permission.SHADOW_READ, tenant_id)  # another tenant: not found
    await tenant_row(request, tenant_id)
    try:
        await in_thread(_command(_service(request), context_of(who, form), tenant_id, form))
    except DomainError as refused:  # the rule the command enforces, shown where it applies
        values = {k: form.get(k, "") for k in ("policy_id", "reason")}
        return await _shadow_page(request, who, tenant_id, refusal=refused, values=values)
    return go(f"{PREFIX}/tenants/{tenant_id}/shadow")


@get("/tenants/{tenant_id:uuid}/shadow/runs/{job_id:uuid}")
async def shadow_run_page(
    request: Request[Any, Any, Any], tenant_id: UUID, job_id: UUID
) -> Response[str]:
    who = await who_of(request)
    authorize(who.principal, Permission.MIGRATION_READ, tenant_id)
    row = await tenant_row(request, tenant_id)
    async with api_of(request).database.tenant_session(tenant_id) as conn:
        job = await find_job(conn, job_id)
        failures = await job_failures(conn, job_id, limit=100) if job else []
    if job is None or job["job_type"] != REPLAY:
        raise NotFound("shadow run not found", {"job_id": str(job_id)})
    summary = job["result_summary"] or {}
    charts = {}
    if summary.get("agreement_series"):
        charts["agreement"] = _agreement_chart(summary["agreement_series"])
    if "disagreements" in summary:
        charts["kinds"] = _kinds_chart(summary["disagreements"])
    job["progress_percentage"] = progress_percentage(job["processed_items"], job["total_items"])
    return page(
        request, "shadow_run.html", who=who, tenant=row, job=job, summary=summary,
        failures=failures, charts=charts, kinds=KINDS, percent=percent,
    )  # fmt: skip


ROUTES = [shadow_page, shadow_command, shadow_run_page]
