"""A data-warehouse integration's sync (it is an integration of type `data_warehouse`): its
status (watermark, lag, last run, last error) for any role of the tenant, and a sync now for
the tenant's EXECUTIVE (or a platform EXECUTIVE). Another tenant's warehouse is 404."""

from __future__ import annotations

from datetime import datetime
from functools import partial
from typing import Annotated, Any
from uuid import UUID

import msgspec
from litestar import Controller, Request, get, post
from litestar.openapi import ResponseSpec
from litestar.params import Body
from msgspec import UNSET

from api.http import examples as ex
from api.http.command_calls import HashHeader, command_context, in_thread
from api.http.dto import ConstitutionalHashBody
from api.http.services import ApiServices
from api.warehouses import warehouse_commands
from commands.context import CommandContext, Principal
from commands.warehouses import WarehouseStatus


class WarehouseSyncStatus(msgspec.Struct, kw_only=True):
    integration_id: UUID
    provider: str
    schedule: str
    watermark: int
    head: int
    lag: int
    runs: int
    rows_loaded: int
    last_run_at: datetime | None
    last_success_at: datetime | None
    last_error: str | None
    last_error_at: datetime | None
    constitutional_hash: str

    @classmethod
    def of(cls, found: WarehouseStatus, constitutional_hash: str) -> WarehouseSyncStatus:
        return cls(
            **{f: getattr(found, f) for f in cls.__struct_fields__ if f != "constitutional_hash"},
            constitutional_hash=constitutional_hash,
        )


class WarehouseSyncRun(msgspec.Struct, kw_only=True):
    integration_id: UUID
    rows_loaded: int
    events_read: int
    watermark: int
    seconds: float
    constitutional_hash: str


def _status(api: ApiServices, principal: Principal, tenant_id: UUID, iid: UUID) -> WarehouseStatus:
    commands = warehouse_commands(api.system)
    try:
        return commands.status(principal, tenant_id, iid)
    finally:
        commands.close()


def _sync(api: ApiServices, ctx: CommandContext, tenant_id: UUID, iid: UUID) -> Any:
    commands = warehouse_commands(api.system)
    try:
        return commands.sync(ctx, tenant_id, iid)
    finally:
        commands.close()


class WarehouseController(Controller):
    path = "/tenants/{tenant_id:uuid}/integrations/{integration_id:uuid}"
    tags = ["integrations"]  # noqa: RUF012

    @get(
        "/sync",
        summary="A data warehouse's sync status",
        description="Any role of the tenant. The warehouse's watermark (the log position of "
        "the last event loaded, as of its last run), the log's head and the lag between them, "
        "its runs, rows loaded, last run, last success and last error.",
        responses=ex.refusals("NOT_FOUND"),
    )
    async def warehouse_sync_status(
        self, tenant_id: UUID, integration_id: UUID, principal: Principal, api: ApiServices
    ) -> WarehouseSyncStatus:
        found = await in_thread(partial(_status, api, principal, tenant_id, integration_id))
        return WarehouseSyncStatus.of(found, api.constitutional_hash)

    @post(
        "/sync",
        status_code=200,
        summary="Sync a data warehouse now",
        description="The tenant's EXECUTIVE. Loads every event after the warehouse's watermark "
        "now (besides its schedule) and answers once it is loaded; a failed load is an error "
        "naming why (a refused schema names the column).",
        responses={
            200: ResponseSpec(WarehouseSyncRun, description="Loaded"),
            **ex.refusals("NOT_FOUND", "FORBIDDEN", *ex.WRITE),
        },
    )
    async def warehouse_sync(
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
    ) -> WarehouseSyncRun:
        in_body = data.constitutional_hash if data is not None else UNSET
        ctx = command_context(request, principal, in_body, constitutional_hash)
        outcome = await in_thread(partial(_sync, api, ctx, tenant_id, integration_id))
        return WarehouseSyncRun(
            integration_id=integration_id,
            rows_loaded=outcome.rows_loaded,
            events_read=outcome.events_read,
            watermark=outcome.watermark,
            seconds=round(outcome.seconds, 3),
            constitutional_hash=api.constitutional_hash,
        )
