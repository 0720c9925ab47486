"""The composition of data-warehouse syncs: the loader of one integration (its adapter, the log
read by position through the one follower, the records, the ledger of runs), and the
`warehouses` worker: the sink fleet over the enabled data-warehouse integrations, one
supervised worker each (`warehouse_<id>`), started, stopped and restarted as they change."""

from __future__ import annotations

from typing import TYPE_CHECKING
from uuid import UUID

from api.sink_fleet import SinkFleet
from commands.warehouses import WarehouseCommands
from domain.sinks import sink_scope
from domain.warehouse import CONTINUOUS
from infra.postgres.follower import LogFollower
from infra.postgres.sink_store import SinkStore
from infra.postgres.warehouse_runs import WarehouseRuns
from infra.supervisor import Worker
from infra.warehouses import open_warehouse
from projections.sinks.records import RecordMaker

if TYPE_CHECKING:
    from api.bootstrap import System
    from projections.sinks.warehouse import WarehouseLoader

WAREHOUSES = "warehouses"  # starts and stops one worker per enabled data-warehouse integration
PREFIX = "warehouse_"


def warehouse_name(integration_id: UUID) -> str:
    return f"{PREFIX}{integration_id.hex}"


def warehouse_loader(system: System, tenant_id: UUID, integration_id: UUID) -> WarehouseLoader:
    # The loader (and pyarrow with it) is imported by the first sync, not by every process that
    # composes the service: the `warehouse` extra's imports are among the slowest.
    from projections.sinks.warehouse import WarehouseLoader  # noqa: PLC0415

    assert system.integrations is not None
    commands = warehouse_commands(system)
    integration = commands.warehouse(tenant_id, integration_id)
    commands.close()
    config = integration.clear_config(system.integrations.sealer)
    default_path = system.settings.data_dir / "warehouses" / f"{integration_id}.duckdb"
    store = SinkStore(system.projector_conninfo)
    return WarehouseLoader(
        integration_id=integration_id,
        owner=tenant_id,
        scope=sink_scope(tenant_id),
        log=LogFollower(
            system.projector_conninfo, warehouse_name(integration_id), track_position=False
        ),
        warehouse=open_warehouse(config, default_path),
        records=RecordMaker(system.app.mapper, store.tenant_slug),
        ledger=WarehouseRuns(system.projector_conninfo),
        schedule=str(config.get("schedule") or CONTINUOUS),
        closing=(store.close,),
    )


def warehouse_commands(system: System) -> WarehouseCommands:
    assert system.integrations is not None
    return WarehouseCommands(
        system.app,
        system.settings.constitutional_hash,
        system.integrations,
        WarehouseRuns(system.projector_conninfo),
        lambda tenant, integration: warehouse_loader(system, tenant, integration),
    )


def warehouse_fleet_worker(system: System) -> Worker:
    def worker_of(tenant_id: UUID, integration_id: UUID) -> Worker:
        loader = warehouse_loader(system, tenant_id, integration_id)
        return Worker(loader.name, loader.run, loader.close)

    fleet = SinkFleet(
        WarehouseRuns(system.projector_conninfo),
        lambda: system.supervisor,
        worker_of,
        name=WAREHOUSES,
        name_of=warehouse_name,
    )
    return Worker(WAREHOUSES, fleet.run, fleet.close)
