"""Governance gaps of a tenant, as gap-analysis runs found them, with their status over time:
`GET /v1/tenants/{tid}/gaps` (the current gaps, filtered and paged, and the trend of the last
runs) and `PATCH /v1/tenants/{tid}/gaps/{gap_id}` (the tenant admin accepts a gap with a reason,
or reopens it). Reads query the gap tables; a review answers from the command, and the list
shows it once the `gap_reviews` read model has caught up (within a second).
"""

from __future__ import annotations

from datetime import UTC, datetime
from functools import partial
from typing import Annotated, Any, Literal
from uuid import UUID

import msgspec
from litestar import Controller, Request, get, patch
from litestar.openapi import ResponseSpec
from litestar.params import Body, Parameter
from msgspec import UNSET, UnsetType

from api.http import examples as ex
from api.http.command_calls import HashHeader, command_context, in_thread
from api.http.dto import HashValue, documented
from api.http.policy_dto import NO_NUL
from api.http.services import ApiServices
from api.http.tenants import MAX_OFFSET
from commands.authorization import Permission, authorize
from commands.context import Principal
from commands.gaps import GapCommands
from domain.policy.gaps.tracking import MAX_REASON, REASON_PATTERN, catalogue_rule
from projections.gaps import find_gap, gap_trend, list_gaps

GapStatusName = Literal["open", "fixed", "accepted"]
SeverityName = Literal["critical", "high", "medium", "low"]
MAX_RUNS = 100
EXAMPLE = {
    "action": "accept",
    "reason": "Approvals need two signatures by procedure; tracked in risk register R-17.",
    "constitutional_hash": ex.HASH,
}


class GapReviewRequest(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    action: Literal["accept", "reopen"]
    reason: Annotated[str, documented(min_length=1, max_length=MAX_REASON, pattern=REASON_PATTERN)]
    constitutional_hash: HashValue | UnsetType = UNSET


class GapReviewBody(msgspec.Struct, kw_only=True):
    status: str
    reason: str
    reviewed_by: str
    reviewed_at: datetime


class GapBody(msgspec.Struct, kw_only=True):
    gap_id: UUID
    rule_id: str
    title: str
    severity: str
    policy_id: str
    policy_version: int
    location: str
    detail: str
    remediation: str
    status: str
    first_seen_at: datetime
    last_seen_at: datetime
    last_seen_run: UUID
    fixed_at: datetime | None
    fixed_in_run: UUID | None
    review: GapReviewBody | None

    @classmethod
    def row(cls, row: dict[str, Any]) -> GapBody:
        rule = catalogue_rule(row["rule_id"])
        review = None
        if row["review_status"] is not None:
            review = GapReviewBody(
                status=row["review_status"],
                reason=row["review_reason"],
                reviewed_by=row["reviewed_by"],
                reviewed_at=row["reviewed_at"].astimezone(UTC),
            )
        fixed_at = row["fixed_at"]
        return cls(
            gap_id=row["gap_id"],
            rule_id=row["rule_id"],
            title=rule.title,
            severity=row["severity"],
            policy_id=row["policy_key"],
            policy_version=row["policy_version"],
            location=row["location"],
            detail=row["detail"],
            remediation=rule.remediation,
            status=row["status"],
            first_seen_at=row["first_seen_at"].astimezone(UTC),
            last_seen_at=row["last_seen_at"].astimezone(UTC),
            last_seen_run=row["last_seen_run"],
            fixed_at=fixed_at.astimezone(UTC) if fixed_at is not None else None,
            fixed_in_run=row["fixed_in_run"],
            review=review,
        )


class GapRun(msgspec.Struct, kw_only=True):
    """One completed gap-analysis run: its score and what it found."""

    run_id: UUID
    completed_at: datetime
    scope: str
    policies_analysed: int
    gaps_found: int
    score: int
    gap_severities: dict[str, int]
    open: int
    accepted: int
    new: int
    fixed: int

    @classmethod
    def row(cls, row: dict[str, Any]) -> GapRun:
        return cls(
            run_id=row["run_id"],
            completed_at=row["completed_at"].astimezone(UTC),
            scope=row["scope"],
            policies_analysed=row["policies_analysed"],
            gaps_found=row["gaps_found"],
            score=row["score"],
            gap_severities=row["gap_severities"],
            open=row["open_count"],
            accepted=row["accepted_count"],
            new=row["new_count"],
            fixed=row["fixed_count"],
        )


class GapList(msgspec.Struct, kw_only=True):
    gaps: list[GapBody]
    total: int
    limit: int
    offset: int
    trend: list[GapRun]  # the last `runs` completed runs, oldest first
    constitutional_hash: str


class GapReviewed(msgspec.Struct, kw_only=True):
    gap_id: UUID
    previous_status: str
    status: str
    reason: str
    reviewed_by: str
    constitutional_hash: str


def _commands(api: ApiServices) -> GapCommands:
    assert api.system.gaps is not None  # built by api.bootstrap.build
    return api.system.gaps


class GapController(Controller):
    path = "/tenants/{tenant_id:uuid}/gaps"
    tags = ["gaps"]  # noqa: RUF012

    @get(
        "/",
        summary="List the tenant's governance gaps, with the trend of the last runs",
        description="Every role of the tenant. Each gap (rule, policy, location) as the "
        "gap_analysis jobs found it: open, fixed (a later run no longer found it) or accepted "
        "(by the tenant admin, with a reason). Filters: status, severity, policy_id; most "
        "severe first. `trend`: score and counts of the last `runs` completed runs.",
        responses={
            200: ResponseSpec(GapList, description="A page of gaps and the trend"),
            **ex.refusals("VALIDATION_ERROR", "NOT_FOUND"),
        },
    )
    async def list_gaps(
        self,
        tenant_id: UUID,
        principal: Principal,
        api: ApiServices,
        status: Annotated[GapStatusName | None, Parameter(query="status", required=False)] = None,
        severity: Annotated[
            SeverityName | None, Parameter(query="severity", required=False)
        ] = None,
        policy_id: Annotated[
            str | None,
            Parameter(query="policy_id", required=False, max_length=255, pattern=NO_NUL),
        ] = None,
        limit: Annotated[int, Parameter(ge=1, le=1000)] = 100,
        offset: Annotated[int, Parameter(ge=0, le=MAX_OFFSET)] = 0,
        runs: Annotated[int, Parameter(ge=1, le=MAX_RUNS)] = 20,
    ) -> GapList:
        authorize(principal, Permission.GAP_READ, tenant_id)
        async with api.database.tenant_session(tenant_id) as conn:
            rows, total = await list_gaps(
                conn,
                status=status,
                severity=severity,
                policy_key=policy_id,
                limit=limit,
                offset=offset,
            )
            trend = await gap_trend(conn, runs)
        return GapList(
            gaps=[GapBody.row(r) for r in rows],
            total=total,
            limit=limit,
            offset=offset,
            trend=[GapRun.row(r) for r in trend],
            constitutional_hash=api.constitutional_hash,
        )

    @patch(
        "/{gap_id:uuid}",
        summary="Accept a gap with a reason, or reopen it",
        description="The tenant's EXECUTIVE. `accept` an open gap (it stays accepted in later "
        "runs that find it again) or `reopen` an accepted one; a reason is required and "
        "recorded in the audit log. A fixed gap cannot be reviewed (409).",
        responses={
            200: ResponseSpec(GapReviewed, description="Reviewed"),
            **ex.refusals(
                "VALIDATION_ERROR", "NOT_FOUND", "FORBIDDEN", "INVALID_STATE_TRANSITION", *ex.WRITE
            ),
        },
    )
    async def review_gap(
        self,
        request: Request[Any, Any, Any],
        tenant_id: UUID,
        gap_id: UUID,
        data: Annotated[GapReviewRequest, Body(examples=ex.example("Accept a gap", EXAMPLE))],
        principal: Principal,
        api: ApiServices,
        constitutional_hash: HashHeader = None,
    ) -> GapReviewed:
        ctx = command_context(request, principal, data.constitutional_hash, constitutional_hash)
        current = None  # another tenant's principal is refused (and audited) by the command
        if principal.is_platform or principal.tenant_id == tenant_id:
            async with api.database.tenant_session(tenant_id) as conn:
                current = await find_gap(conn, gap_id)
        reviewed = await in_thread(
            partial(
                _commands(api).review,
                ctx,
                tenant_id,
                gap_id,
                current,
                action=data.action,
                reason=data.reason,
            )
        )
        return GapReviewed(
            gap_id=gap_id,
            previous_status=reviewed.previous.value,
            status=reviewed.status.value,
            reason=reviewed.reason,
            reviewed_by=reviewed.reviewed_by,
            constitutional_hash=api.constitutional_hash,
        )
