"""The console's gaps pages: the tenant's governance gaps as gap-analysis runs found them, the
latest run's gaps by severity and the closure trend over the runs (charts with their figures in
tables), each gap with its remediation (the catalogue's advice and its policy snippet), filters
by status, severity and policy, and accepting or reopening a gap with a reason (the tenant
admin), through the same command as `PATCH /v1/tenants/{tid}/gaps/{gap_id}`."""

from __future__ import annotations

from collections.abc import Mapping
from functools import cache, partial
from typing import Any
from urllib.parse import parse_qsl, urlencode
from uuid import UUID

from litestar import Request, Response, get, post

from api.console.charts import by_category, over_time
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
from api.http.gaps import GapBody, GapRun
from commands.authorization import Permission, authorize
from commands.gaps import GapCommands
from domain.errors import DomainError, Forbidden, NotFound
from domain.policy.gaps.catalogue import SEVERITY_WEIGHTS
from domain.policy.gaps.tracking import catalogue_rule
from domain.policy.rego_generator import generate_rego
from domain.policy.rule_model import Policy
from domain.policy.sources import parse_source
from projections.gaps import find_gap, gap_trend, list_gaps

STATUSES = ("open", "fixed", "accepted")
SEVERITIES = tuple(s.value for s in SEVERITY_WEIGHTS)
PAGE_SIZE = 50
TREND_RUNS = 20
MAX_POLICY_KEY = 255
FILTERS = ("status", "severity", "policy_id")


def _commands(request: Request[Any, Any, Any]) -> GapCommands:
    commands = api_of(request).system.gaps
    assert commands is not None  # built by api.bootstrap.build
    return commands


@cache
def remediation(rule_id: str, constitutional_hash: str) -> tuple[str, str]:
    """The catalogue rule's remediation policy (rule DSL) and the Rego the converter makes of it
    for this deployment's constitutional hash."""
    source = catalogue_rule(rule_id).remediation_policy
    [policy] = parse_source(f"{rule_id}.rules", source)
    assert isinstance(policy, Policy)  # the catalogue's snippets parse (a unit test says so)
    rego = generate_rego(
        policy, constitutional_hash=constitutional_hash, source=f"remediation of {rule_id}"
    )
    return source, rego


def read_filters(query: dict[str, str]) -> tuple[dict[str, str], dict[str, str]]:
    """The filters the list takes (empty: any) and a message for each bad one."""
    filters = {k: query.get(k, "").strip() for k in FILTERS}
    errors = {}
    if filters["status"] and filters["status"] not in STATUSES:
        errors["status"] = f"one of {', '.join(STATUSES)}"
    if filters["severity"] and filters["severity"] not in SEVERITIES:
        errors["severity"] = f"one of {', '.join(SEVERITIES)}"
    policy = filters["policy_id"]
    if len(policy) > MAX_POLICY_KEY or any(ord(c) < 0x20 or ord(c) == 0x7F for c in policy):
        errors["policy_id"] = f"at most {MAX_POLICY_KEY} characters, no control characters"
    return filters, errors


def _offset(query: dict[str, str]) -> int:
    raw = query.get("offset", "0")
    return min(int(raw), 1_000_000) if raw.isdigit() else 0


def trend_charts(trend: list[GapRun]) -> dict[str, Any]:
    """The latest run's gaps by severity, and the score and counts of each run over time."""
    if not trend:
        return {}
    latest = trend[-1].gap_severities
    return {
        "severity": by_category({s: latest.get(s, 0) for s in SEVERITIES}, "Gaps found"),
        "trend": over_time(
            [run.completed_at for run in trend],
            {
                "Score": [run.score for run in trend],
                "Open": [run.open for run in trend],
                "Fixed by the run": [run.fixed for run in trend],
            },
        ),
    }


async def _gaps_page(
    request: Request[Any, Any, Any],
    who: SignedIn,
    tenant_id: UUID,
    asked: Mapping[str, str],
    *,
    review: dict[str, Any] | None = None,
    status: int = 200,
) -> Response[str]:
    authorize(who.principal, Permission.GAP_READ, tenant_id)
    row = await tenant_row(request, tenant_id)
    query = {k: v[: MAX_POLICY_KEY + 1] for k, v in asked.items()}
    filters, errors = read_filters(query)
    offset = _offset(query)
    gaps: list[dict[str, Any]] = []
    total = 0
    async with api_of(request).database.tenant_session(tenant_id) as conn:
        if not errors:
            rows, total = await list_gaps(
                conn, status=filters["status"] or None, severity=filters["severity"] or None,
                policy_key=filters["policy_id"] or None, limit=PAGE_SIZE, offset=offset,
            )  # fmt: skip
            for r in rows:
                body = GapBody.row(r)
                snippet, rego = remediation(body.rule_id, api_of(request).constitutional_hash)
                gaps.append({"gap": body, "snippet": snippet, "rego": rego})
        trend = [GapRun.row(r) for r in await gap_trend(conn, TREND_RUNS)]
    kept = {k: v for k, v in filters.items() if v}
    pages = {
        "previous": urlencode({**kept, "offset": max(0, offset - PAGE_SIZE)}) if offset else None,
        "next": urlencode({**kept, "offset": offset + PAGE_SIZE})
        if offset + PAGE_SIZE < total
        else None,
    }
    return page(
        request, "gaps.html", who=who, tenant=row, gaps=gaps, total=total, offset=offset,
        filters=filters, errors=errors, trend=trend, charts=trend_charts(trend),
        severities=SEVERITIES, statuses=STATUSES, pages=pages, review=review,
        back=urlencode({**kept, "offset": offset}), reviewed=query.get("reviewed"),
        status=422 if errors else status,
    )  # fmt: skip


@get("/tenants/{tenant_id:uuid}/gaps")
async def gaps_page(request: Request[Any, Any, Any], tenant_id: UUID) -> Response[str]:
    return await _gaps_page(request, await who_of(request), tenant_id, request.query_params)


@post("/tenants/{tenant_id:uuid}/gaps/{gap_id:uuid}")
async def review_gap(
    request: Request[Any, Any, Any], tenant_id: UUID, gap_id: UUID
) -> Response[Any]:
    who = await who_of(request)
    form = await read_form(request)
    authorize(who.principal, Permission.GAP_READ, tenant_id)  # another tenant: not found
    async with api_of(request).database.tenant_session(tenant_id) as conn:
        current = await find_gap(conn, gap_id)
    kept = [(k, v) for k, v in parse_qsl(form.get("back", "")) if k in (*FILTERS, "offset")]
    review = partial(
        _commands(request).review, context_of(who, form), tenant_id, gap_id, current,
        action=form.get("action", ""), reason=form.get("reason", ""),
    )  # fmt: skip
    try:
        await in_thread(review)
    except DomainError as refused:
        if isinstance(refused, NotFound):
            raise
        shown = {
            "gap_id": str(gap_id),
            "reason": form.get("reason", ""),
            "message": refused.message,
            "code": refused.code,
            "errors": field_errors(refused),
            "forbidden": isinstance(refused, Forbidden),
        }
        return await _gaps_page(
            request, who, tenant_id, dict(kept), review=shown, status=status_of(refused.code)
        )
    back = urlencode([*kept, ("reviewed", str(gap_id))])
    return go(f"{PREFIX}/tenants/{tenant_id}/gaps?{back}#gap-{gap_id}")


ROUTES = [gaps_page, review_gap]
