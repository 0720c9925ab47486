"""A tenant's webhooks: register (the secret is shown once, in this answer), list, read, change
(re-enable with `enabled: true`), delete, send a test delivery, and read the delivery log.
Writes and the test need the tenant's EXECUTIVE (like integrations); reads, any role of the
tenant. Another tenant's webhook is 404. Writes answer from the aggregate; reads query the
`webhooks` read model and the delivery log.

`Idempotency-Key` is not honoured on registration: its answer holds the clear secret, which is
never stored anywhere a replay could read it."""

from __future__ import annotations

from datetime import UTC, datetime
from functools import partial
from typing import Annotated, Any
from uuid import UUID

import msgspec
from litestar import Controller, Request, Response, delete, get, patch, post
from litestar.openapi import ResponseSpec
from litestar.params import Body, Parameter
from msgspec import UNSET, UnsetType

from api.http import examples as ex
from api.http.command_calls import HashHeader, command_context, in_thread
from api.http.dto import ConstitutionalHashBody, HashValue
from api.http.services import ApiServices
from api.http.tenants import MAX_OFFSET
from commands.authorization import Permission, authorize
from commands.context import Principal
from commands.webhooks import RegisterWebhook, WebhookCommands
from domain.errors import NotFound
from domain.integration.values import REDACTED
from domain.webhooks.aggregate import Webhook
from projections.webhooks import find_webhook, list_deliveries, list_webhooks

EXAMPLE = {
    "webhook_url": "https://hooks.acme.example.com/acgs",
    "events": ["policy.updated", "integration.health_changed"],
    "constitutional_hash": ex.HASH,
}
Limit = Annotated[int, Parameter(query="limit", ge=1, le=1000)]
Offset = Annotated[int, Parameter(query="offset", ge=0, le=MAX_OFFSET)]


class CreateWebhookRequest(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    webhook_url: str
    events: list[str]
    secret: str | None = None  # generated when absent
    enabled: bool = True
    constitutional_hash: HashValue | UnsetType = UNSET


class UpdateWebhookRequest(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    webhook_url: str | UnsetType = UNSET
    events: list[str] | UnsetType = UNSET
    enabled: bool | UnsetType = UNSET
    constitutional_hash: HashValue | UnsetType = UNSET

    def changes(self) -> dict[str, Any]:
        return {
            f: getattr(self, f)
            for f in ("webhook_url", "events", "enabled")
            if getattr(self, f) is not UNSET
        }


class WebhookBody(msgspec.Struct, kw_only=True):
    webhook_id: UUID
    tenant_id: UUID
    webhook_url: str
    events: list[str]
    enabled: bool
    disabled_reason: str | None
    secret: str
    created_at: datetime
    constitutional_hash: str

    @classmethod
    def of(cls, webhook: Webhook, constitutional_hash: str, secret: str = REDACTED) -> WebhookBody:
        return cls(
            webhook_id=webhook.id,
            tenant_id=webhook.tenant_id,
            webhook_url=webhook.webhook_url,
            events=list(webhook.events),
            enabled=webhook.enabled,
            disabled_reason=webhook.disabled_reason,
            secret=secret,
            created_at=webhook.created_on.astimezone(UTC),
            constitutional_hash=constitutional_hash,
        )

    @classmethod
    def row(cls, row: dict[str, Any]) -> WebhookBody:
        return cls(
            webhook_id=row["webhook_id"],
            tenant_id=row["tenant_id"],
            webhook_url=row["webhook_url"],
            events=list(row["events"]),
            enabled=row["enabled"],
            disabled_reason=row["disabled_reason"],
            secret=REDACTED,
            created_at=row["created_at"].astimezone(UTC),
            constitutional_hash=row["constitutional_hash"],
        )


class WebhookUpdated(WebhookBody, kw_only=True):
    updated_fields: list[str]


class WebhookList(msgspec.Struct, kw_only=True):
    webhooks: list[WebhookBody]
    total: int
    limit: int
    offset: int
    constitutional_hash: str


class DeliveryView(msgspec.Struct, kw_only=True):
    event_id: UUID
    position: int
    event_type: str
    status: str  # delivered, failed (being retried), dead_lettered
    attempts: int
    response_code: int | None
    latency_ms: float | None
    error: str | None
    first_attempt_at: datetime
    last_attempt_at: datetime


class DeliveryList(msgspec.Struct, kw_only=True):
    webhook_id: UUID
    deliveries: list[DeliveryView]
    total: int
    limit: int
    offset: int
    constitutional_hash: str


class TestDeliveryBody(msgspec.Struct, kw_only=True):
    webhook_id: UUID
    event_id: str
    delivered: bool
    response_code: int | None
    latency_ms: float
    error: str | None
    constitutional_hash: str


def _commands(api: ApiServices) -> WebhookCommands:
    assert api.system.webhooks is not None  # built by api.bootstrap.build
    return api.system.webhooks


class WebhookController(Controller):
    path = "/tenants/{tenant_id:uuid}/webhooks"
    tags = ["webhooks"]  # noqa: RUF012

    @post(
        "/",
        status_code=201,
        summary="Register a webhook",
        description="The tenant's EXECUTIVE. `events`: policy.updated, migration.completed, "
        "integration.health_changed, webhook.disabled. `secret` (16-256 characters) is "
        "generated when absent and shown only in this answer. The URL is refused when it, or "
        "any address its host resolves to, is loopback, link-local, private, unique-local, "
        "CGNAT, multicast, unspecified or a cloud metadata endpoint, unless the operator's "
        "allow-list permits it. Idempotency-Key is not honoured (the answer holds the secret).",
        responses={
            201: ResponseSpec(WebhookBody, description="Registered; the secret shown once"),
            **ex.refusals("VALIDATION_ERROR", "NOT_FOUND", "FORBIDDEN", *ex.WRITE),
        },
    )
    async def create_webhook(
        self,
        request: Request[Any, Any, Any],
        tenant_id: UUID,
        data: Annotated[CreateWebhookRequest, Body(examples=ex.example("a webhook", EXAMPLE))],
        principal: Principal,
        api: ApiServices,
        constitutional_hash: HashHeader = None,
    ) -> Response[WebhookBody]:
        ctx = command_context(request, principal, data.constitutional_hash, constitutional_hash)
        command = RegisterWebhook(
            webhook_url=data.webhook_url,
            events=data.events,
            secret=data.secret,
            enabled=data.enabled,
        )
        webhook, secret = await in_thread(partial(_commands(api).create, ctx, tenant_id, command))
        return Response(WebhookBody.of(webhook, api.constitutional_hash, secret), status_code=201)

    @get(
        "/",
        summary="List a tenant's webhooks",
        description="Any role of the tenant; oldest first; secrets redacted.",
        responses=ex.refusals("NOT_FOUND", "VALIDATION_ERROR"),
    )
    async def list_webhooks(
        self,
        tenant_id: UUID,
        principal: Principal,
        api: ApiServices,
        limit: Limit = 50,
        offset: Offset = 0,
    ) -> WebhookList:
        authorize(principal, Permission.INTEGRATION_READ, tenant_id)
        async with api.database.tenant_session(tenant_id) as conn:
            rows, total = await list_webhooks(conn, limit, offset)
        return WebhookList(
            webhooks=[WebhookBody.row(r) for r in rows],
            total=total,
            limit=limit,
            offset=offset,
            constitutional_hash=api.constitutional_hash,
        )

    @get(
        "/{webhook_id:uuid}",
        summary="Read a webhook",
        description="Any role of the tenant; the secret redacted.",
        responses=ex.refusals("NOT_FOUND"),
    )
    async def get_webhook(
        self, tenant_id: UUID, webhook_id: UUID, principal: Principal, api: ApiServices
    ) -> WebhookBody:
        authorize(principal, Permission.INTEGRATION_READ, tenant_id)
        async with api.database.tenant_session(tenant_id) as conn:
            row = await find_webhook(conn, webhook_id)
        if row is None:
            raise NotFound("webhook not found", {"webhook_id": str(webhook_id)})
        return WebhookBody.row(row)

    @patch(
        "/{webhook_id:uuid}",
        summary="Change a webhook",
        description="The tenant's EXECUTIVE: webhook_url (checked again), events, enabled "
        "(true re-enables a webhook its deliveries disabled).",
        responses={
            200: ResponseSpec(WebhookUpdated, description="Updated"),
            **ex.refusals("VALIDATION_ERROR", "NOT_FOUND", "FORBIDDEN", *ex.WRITE),
        },
    )
    async def update_webhook(
        self,
        request: Request[Any, Any, Any],
        tenant_id: UUID,
        webhook_id: UUID,
        data: UpdateWebhookRequest,
        principal: Principal,
        api: ApiServices,
        constitutional_hash: HashHeader = None,
    ) -> WebhookUpdated:
        ctx = command_context(request, principal, data.constitutional_hash, constitutional_hash)
        webhook, updated = await in_thread(
            partial(_commands(api).update, ctx, tenant_id, webhook_id, data.changes())
        )
        body = WebhookBody.of(webhook, api.constitutional_hash)
        return WebhookUpdated(**msgspec.structs.asdict(body), updated_fields=updated)

    @delete(
        "/{webhook_id:uuid}",
        status_code=204,
        summary="Delete a webhook",
        description="The tenant's EXECUTIVE; the constitutional hash in X-Constitutional-Hash. "
        "Its deliveries stop and its secret's key is shredded.",
        responses=ex.refusals("NOT_FOUND", "FORBIDDEN", "CONCURRENT_MODIFICATION", *ex.WRITE),
    )
    async def delete_webhook(
        self,
        request: Request[Any, Any, Any],
        tenant_id: UUID,
        webhook_id: UUID,
        principal: Principal,
        api: ApiServices,
        constitutional_hash: HashHeader = None,
    ) -> None:
        ctx = command_context(request, principal, UNSET, constitutional_hash)
        await in_thread(partial(_commands(api).delete, ctx, tenant_id, webhook_id))

    @post(
        "/{webhook_id:uuid}/test",
        status_code=200,
        summary="Send a test delivery",
        description="The tenant's EXECUTIVE. POSTs one signed `webhook.test` event now (the "
        "target checked again) and answers with the outcome; logged with the deliveries and "
        "audited. A receiver that refuses it is still a 200 with `delivered: false`.",
        responses={
            200: ResponseSpec(TestDeliveryBody, description="The attempt"),
            **ex.refusals("NOT_FOUND", "FORBIDDEN", *ex.WRITE),
        },
    )
    async def test_webhook(
        self,
        request: Request[Any, Any, Any],
        tenant_id: UUID,
        webhook_id: UUID,
        principal: Principal,
        api: ApiServices,
        data: Annotated[
            ConstitutionalHashBody | None,
            Body(examples=ex.example("hash in the body", {"constitutional_hash": ex.HASH})),
        ] = None,
        constitutional_hash: HashHeader = None,
    ) -> TestDeliveryBody:
        in_body = data.constitutional_hash if data is not None else UNSET
        ctx = command_context(request, principal, in_body, constitutional_hash)
        sent = await in_thread(partial(_commands(api).test, ctx, tenant_id, webhook_id))
        return TestDeliveryBody(
            webhook_id=webhook_id,
            event_id=sent.event_id,
            delivered=sent.attempt.delivered,
            response_code=sent.attempt.response_code,
            latency_ms=sent.attempt.latency_ms,
            error=sent.attempt.error,
            constitutional_hash=api.constitutional_hash,
        )

    @get(
        "/{webhook_id:uuid}/deliveries",
        summary="A webhook's delivery log",
        description="Any role of the tenant. One row per event: status (delivered, failed and "
        "being retried, dead_lettered), attempts, the last response code and latency; the "
        "latest attempt first.",
        responses=ex.refusals("NOT_FOUND", "VALIDATION_ERROR"),
    )
    async def webhook_deliveries(
        self,
        tenant_id: UUID,
        webhook_id: UUID,
        principal: Principal,
        api: ApiServices,
        limit: Limit = 100,
        offset: Offset = 0,
    ) -> DeliveryList:
        authorize(principal, Permission.INTEGRATION_READ, tenant_id)
        async with api.database.tenant_session(tenant_id) as conn:
            if await find_webhook(conn, webhook_id) is None:
                raise NotFound("webhook not found", {"webhook_id": str(webhook_id)})
            rows, total = await list_deliveries(conn, webhook_id, limit, offset)
        return DeliveryList(
            webhook_id=webhook_id,
            deliveries=[DeliveryView(**r) for r in rows],
            total=total,
            limit=limit,
            offset=offset,
            constitutional_hash=api.constitutional_hash,
        )
