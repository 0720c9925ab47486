"""Shadow mode over HTTP: `POST /v1/tenants/{tid}/shadow/decisions` (legacy decisions compared
with the tenant's Rego, answered with the comparison and the side each request is served by),
`GET /v1/tenants/{tid}/shadow` (configuration, step, metrics) and `POST /v1/tenants/{tid}/shadow`
(configure, request a step, approve, roll back). The work runs in a worker thread."""

from __future__ import annotations

from functools import partial
from typing import Any, TypeVar
from uuid import UUID

import anyio.to_thread
from litestar import Controller, Request, Response, get, post
from litestar.openapi import ResponseSpec
from msgspec import UNSET

from api.http import examples as ex
from api.http.command_calls import HashHeader, IdempotencyKey, command_context, supplied_hash
from api.http.services import ApiServices
from api.http.shadow_dto import (
    ShadowCommandBody,
    ShadowDecisionsBody,
    ShadowDecisionsResult,
    ShadowStatus,
)
from commands.constitution import verify_constitutional_hash
from commands.context import Principal
from commands.shadow import RolloutState, ShadowService
from domain.errors import ValidationFailed

T = TypeVar("T")


class ShadowController(Controller):
    path = "/tenants/{tenant_id:uuid}/shadow"
    tags = ["shadow mode"]  # noqa: RUF012

    @post(
        "/decisions",
        status_code=200,
        summary="Compare legacy decisions with the tenant's Rego (1 to 1,000)",
        description="IMPLEMENTER, CONTROLLER or EXECUTIVE. Each legacy decision (principal, "
        "action, resource, context, decision allow|deny, latency_ms, optional decision_id) is "
        "decided by the active version of the shadow policy and compared. Each result says "
        "whether the request is routed to Rego at the current percentage (a stable hash of "
        "decision_id, else of the request) and the decision to serve: Rego's when routed and "
        "decided, else the legacy one. Counts go to the tenant's metrics; each violation the "
        "legacy engine missed is a governance audit alert; the rollback rule is applied and "
        "`rolled_back` carries its evidence when this call tripped it.",
        responses={
            200: ResponseSpec(ShadowDecisionsResult, description="The comparisons"),
            **ex.refusals("NOT_FOUND", "FORBIDDEN", "IDEMPOTENCY_KEY_REUSED", *ex.WRITE),
        },
    )
    async def compare(
        self,
        request: Request[Any, Any, Any],
        tenant_id: UUID,
        data: ShadowDecisionsBody,
        principal: Principal,
        api: ApiServices,
        constitutional_hash: HashHeader = None,
        idempotency_key: IdempotencyKey = None,
    ) -> Response[ShadowDecisionsResult]:
        supplied = supplied_hash(data.constitutional_hash, constitutional_hash)
        verify_constitutional_hash(supplied, api.constitutional_hash)
        items = data.items()
        legacy = [item.legacy() for item in items]

        async def compare() -> Response[Any]:
            compared = await in_thread(
                partial(_shadow(api).compare_live, principal, tenant_id, legacy)
            )
            return Response(ShadowDecisionsResult.of(items, compared, api.constitutional_hash))

        return await api.idempotency.run(request, principal, idempotency_key, compare)

    @get(
        "",
        summary="Shadow mode: configuration, step and metrics",
        description="Every role of the tenant. `current_step` counts the decisions of the "
        "current step (what a step up is judged on); `all_time` counts every step and carries "
        "`agreement_series` ([minute, rate] pairs, oldest first).",
        responses={
            200: ResponseSpec(ShadowStatus, description="The status"),
            **ex.refusals("NOT_FOUND", "FORBIDDEN"),
        },
    )
    async def status(self, tenant_id: UUID, principal: Principal, api: ApiServices) -> ShadowStatus:
        found = await in_thread(partial(_shadow(api).status, principal, tenant_id))
        return ShadowStatus(**found, constitutional_hash=api.constitutional_hash)

    @post(
        "",
        status_code=200,
        summary="Configure shadow mode, request a step, approve it, or roll back",
        description="`configure` (policy_id, rollback settings) and `request_step` (target: "
        "the next of 0, 25, 50, 100) and `roll_back` (reason): IMPLEMENTER, CONTROLLER or "
        "EXECUTIVE. A step up needs >= 95 % agreement over >= 1,000 decisions at the current "
        "step (409 INVALID_STATE_TRANSITION with the evidence otherwise); a step past 50 % is "
        "recorded as requested and takes effect on `approve` by a JUDICIAL principal other "
        "than the requester (403 otherwise).",
        responses={
            200: ResponseSpec(ShadowStatus, description="The status after the change"),
            **ex.refusals(
                "NOT_FOUND",
                "FORBIDDEN",
                "INVALID_STATE_TRANSITION",
                "CONCURRENT_MODIFICATION",
                "IDEMPOTENCY_KEY_REUSED",
                *ex.WRITE,
            ),
        },
    )
    async def command(
        self,
        request: Request[Any, Any, Any],
        tenant_id: UUID,
        data: ShadowCommandBody,
        principal: Principal,
        api: ApiServices,
        constitutional_hash: HashHeader = None,
        idempotency_key: IdempotencyKey = None,
    ) -> Response[ShadowStatus]:
        ctx = command_context(request, principal, data.constitutional_hash, constitutional_hash)
        problems = data.misplaced()
        if problems:
            raise ValidationFailed.listing(problems)
        shadow = _shadow(api)

        async def command() -> Response[Any]:
            await in_thread(partial(_run, shadow, data, ctx, tenant_id))
            found = await in_thread(partial(shadow.status, principal, tenant_id))
            return Response(ShadowStatus(**found, constitutional_hash=api.constitutional_hash))

        return await api.idempotency.run(request, principal, idempotency_key, command)


def _run(shadow: ShadowService, data: ShadowCommandBody, ctx: Any, tenant_id: UUID) -> RolloutState:
    if data.action == "configure":
        rollback = None if data.rollback is UNSET else data.rollback
        return shadow.configure(ctx, tenant_id, data.policy_id, rollback)
    if data.action == "request_step":
        assert isinstance(data.target, int)
        return shadow.request_step(ctx, tenant_id, data.target)
    if data.action == "approve":
        return shadow.approve(ctx, tenant_id)
    reason = "rolled back by hand" if data.reason is UNSET else data.reason
    return shadow.roll_back(ctx, tenant_id, reason)


def _shadow(api: ApiServices) -> ShadowService:
    service = api.system.shadow
    if service is None:
        raise RuntimeError("shadow mode is not built")
    return service


async def in_thread(call: partial[T]) -> T:
    return await anyio.to_thread.run_sync(call)
