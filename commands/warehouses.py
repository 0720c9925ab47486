"""What a tenant admin does with a data-warehouse integration besides configuring it (an
integration of type `data_warehouse`): sync it now, and read its status (watermark, lag, last
run, last error). A sync loads every event after the warehouse's watermark
(`projections.sinks.warehouse`)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol, TypeVar
from uuid import UUID

from commands.application import GovernanceApplication
from commands.authorization import Permission, authorize
from commands.context import CommandContext, Principal
from commands.integrations import IntegrationCommands
from commands.preamble import CommandPreamble
from domain.errors import DependencyUnavailable, DomainError, NotFound
from domain.integration.aggregate import Integration
from domain.integration.values import IntegrationType

if TYPE_CHECKING:
    from projections.sinks.warehouse import Progress, SyncOutcome, WarehouseLoader


class RunsOf(Protocol):
    def last_run(self, owner: UUID, integration_id: UUID) -> dict[str, Any] | None: ...

    def head(self) -> int: ...

    def close(self) -> None: ...


LoaderOf = Callable[[UUID, UUID], "WarehouseLoader"]
SYNC_ACTION = "sync_data_warehouse"
T = TypeVar("T")


@dataclass(frozen=True)
class WarehouseStatus:
    integration_id: UUID
    provider: str
    schedule: str
    watermark: int  # as of the last run
    head: int  # the log's last position now
    lag: int  # positions of the log not loaded yet (head - watermark)
    runs: int
    rows_loaded: int
    last_run_at: datetime | None
    last_success_at: datetime | None
    last_error: str | None
    last_error_at: datetime | None


class WarehouseCommands:
    def __init__(
        self,
        app: GovernanceApplication,
        constitutional_hash: str,
        integrations: IntegrationCommands,
        runs: RunsOf,
        loader_of: LoaderOf,
    ) -> None:
        self._preamble = CommandPreamble(app, constitutional_hash)
        self._integrations = integrations
        self._runs = runs
        self._loader_of = loader_of

    def close(self) -> None:
        self._runs.close()

    def warehouse(self, tenant_id: UUID, integration_id: UUID) -> Integration:
        """A live data-warehouse integration of the tenant; NotFound for anything else."""
        integration = self._integrations.load(tenant_id, integration_id)
        if integration.integration_type is not IntegrationType.DATA_WAREHOUSE:
            raise NotFound("warehouse not found", {"integration_id": str(integration_id)})
        return integration

    def status(
        self, principal: Principal, tenant_id: UUID, integration_id: UUID
    ) -> WarehouseStatus:
        authorize(principal, Permission.INTEGRATION_READ, tenant_id)
        config = self.warehouse(tenant_id, integration_id).config
        run = self._runs.last_run(tenant_id, integration_id) or {}
        head = self._runs.head()
        watermark = int(run.get("watermark", 0))
        return WarehouseStatus(
            integration_id=integration_id,
            provider=str(config.get("provider")),
            schedule=str(config.get("schedule")),
            watermark=watermark,
            head=head,
            lag=max(0, head - watermark),
            runs=int(run.get("runs", 0)),
            rows_loaded=int(run.get("rows_loaded", 0)),
            last_run_at=run.get("last_run_at"),
            last_success_at=run.get("last_success_at"),
            last_error=run.get("last_error"),
            last_error_at=run.get("last_error_at"),
        )

    def sync(
        self,
        ctx: CommandContext,
        tenant_id: UUID,
        integration_id: UUID,
        progress: Progress | None = None,
        *,
        chunk: int | None = None,
    ) -> SyncOutcome:
        """Load everything after the watermark now (besides the integration's own schedule),
        `chunk` events per load. Needs the constitutional hash, like every write."""
        self._preamble.begin(
            ctx, Permission.INTEGRATION_MANAGE, tenant_id, SYNC_ACTION, integration_id
        )
        self.warehouse(tenant_id, integration_id)
        loader = _unavailable(lambda: self._loader_of(tenant_id, integration_id), integration_id)
        if chunk is not None:
            loader.chunk = chunk
        try:
            return _unavailable(lambda: loader.sync(progress=progress), integration_id)
        finally:
            loader.close()


def _unavailable(call: Callable[[], T], integration_id: UUID) -> T:
    """`call()`; a failure of the warehouse (unreachable, refused credentials, a refused
    statement) as DependencyUnavailable naming it (503), a domain error as itself."""
    try:
        return call()
    except DomainError:
        raise
    except Exception as exc:
        msg = f"the warehouse load failed: {type(exc).__name__}: {exc}"[:1000]
        raise DependencyUnavailable(msg, {"integration_id": str(integration_id)}) from exc
