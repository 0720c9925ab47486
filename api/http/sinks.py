"""A SIEM sink's deliveries (it is an integration of type `siem`): where its follower of the log
stands, how far behind it is, its counters in this process, and its dead letters; and the
re-drive of its dead letters once the receiver is back. Reading needs any role of the tenant;
re-driving, the tenant's EXECUTIVE (or a platform EXECUTIVE). Another tenant's sink is 404."""

from __future__ import annotations

from datetime import datetime
from functools import partial
from typing import Annotated, Any
from uuid import UUID

import msgspec
from litestar import Controller, Request, get, post
from litestar.openapi import ResponseSpec
from litestar.params import Body, Parameter
from msgspec import UNSET

from api.http import examples as ex
from api.http.command_calls import HashHeader, command_context, in_thread
from api.http.dto import ConstitutionalHashBody
from api.http.services import ApiServices
from commands.context import Principal
from commands.sinks import SinkCommands
from domain.sinks import DeadLetter


class DeliveryPosition(msgspec.Struct, kw_only=True):
    follower: str
    position: int
    head: int
    events_behind: int
    seconds_behind: float


class DeliveryCounters(msgspec.Struct, kw_only=True):
    delivered: int
    failed: int
    dead_lettered: int
    retries: int
    batches: int


class DeadLetterView(msgspec.Struct, kw_only=True):
    event_id: str
    position: int
    event_type: str
    error: str
    attempts: int
    first_failed_at: datetime
    last_failed_at: datetime
    record: dict[str, Any]

    @classmethod
    def of(cls, letter: DeadLetter) -> DeadLetterView:
        return cls(
            event_id=letter.record.event_id,
            position=letter.record.position,
            event_type=letter.record.event_type,
            error=letter.error,
            attempts=letter.attempts,
            first_failed_at=letter.first_failed_at,
            last_failed_at=letter.last_failed_at,
            record=letter.record.body,
        )


class SinkDeliveries(msgspec.Struct, kw_only=True):
    integration_id: UUID
    delivery: DeliveryPosition
    counters: DeliveryCounters
    dead_letter_count: int
    dead_letters: list[DeadLetterView]
    constitutional_hash: str


class DeadLetterRetry(msgspec.Struct, kw_only=True):
    integration_id: UUID
    retried: int
    delivered: int
    remaining: int
    error: str | None
    constitutional_hash: str


class SinkController(Controller):
    path = "/tenants/{tenant_id:uuid}/integrations/{integration_id:uuid}"
    tags = ["integrations"]  # noqa: RUF012

    @get(
        "/deliveries",
        summary="A SIEM sink's deliveries",
        description="Any role of the tenant. The sink's position in the event log, how many "
        "of the tenant's events (all events for a platform sink) it is behind and for how long, "
        "its counters in this API process (delivered, failed, dead-lettered, retries, batches), "
        "and its dead letters in log order (at most `limit`).",
        responses=ex.refusals("NOT_FOUND", "VALIDATION_ERROR"),
    )
    async def sink_deliveries(
        self,
        tenant_id: UUID,
        integration_id: UUID,
        principal: Principal,
        api: ApiServices,
        limit: Annotated[int, Parameter(query="limit", ge=1, le=1000)] = 100,
    ) -> SinkDeliveries:
        found = await in_thread(
            partial(_sinks(api).deliveries, principal, tenant_id, integration_id, limit)
        )
        counters = found.counters
        return SinkDeliveries(
            integration_id=integration_id,
            delivery=DeliveryPosition(follower=found.follower, **found.status),
            counters=DeliveryCounters(
                **{k: int(counters.get(k, 0)) for k in DeliveryCounters.__struct_fields__}
            ),
            dead_letter_count=found.dead_letter_count,
            dead_letters=[DeadLetterView.of(d) for d in found.dead_letters],
            constitutional_hash=api.constitutional_hash,
        )

    @post(
        "/dead-letters/retry",
        status_code=200,
        summary="Re-drive a SIEM sink's dead letters",
        description="The tenant's EXECUTIVE. Sends every dead letter once more, in log order and "
        "in batches; the ones the receiver acknowledges are removed, the others count another "
        "attempt (`remaining`, with the receiver's `error`). Audited.",
        responses={
            200: ResponseSpec(DeadLetterRetry, description="Re-driven"),
            **ex.refusals("NOT_FOUND", "FORBIDDEN", *ex.WRITE),
        },
    )
    async def retry_dead_letters(
        self,
        request: Request[Any, Any, Any],
        tenant_id: UUID,
        integration_id: UUID,
        principal: Principal,
        api: ApiServices,
        data: Annotated[
            ConstitutionalHashBody | None,
            Body(examples=ex.example("hash in the body", {"constitutional_hash": ex.HASH})),
        ] = None,
        constitutional_hash: HashHeader = None,
    ) -> DeadLetterRetry:
        in_body = data.constitutional_hash if data is not None else UNSET
        ctx = command_context(request, principal, in_body, constitutional_hash)
        outcome = await in_thread(partial(_sinks(api).retry, ctx, tenant_id, integration_id))
        return DeadLetterRetry(
            integration_id=integration_id,
            retried=outcome.retried,
            delivered=outcome.delivered,
            remaining=outcome.remaining,
            error=outcome.error,
            constitutional_hash=api.constitutional_hash,
        )


def _sinks(api: ApiServices) -> SinkCommands:
    sinks = api.system.sinks
    assert sinks is not None
    return sinks
