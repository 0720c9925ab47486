"""The `warehouses` worker under a real supervisor: an enabled continuous DuckDB integration
gets its own worker, which loads new events as they are recorded; disabling the integration
stops it."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import duckdb
import pytest

from api.bootstrap import System
from api.sink_fleet import SinkFleet
from api.warehouses import WAREHOUSES, warehouse_loader, warehouse_name
from commands.integrations import CreateIntegration
from infra.postgres.warehouse_runs import WarehouseRuns
from infra.supervisor import Supervisor, Worker
from tests.integration.kafka.support import PLATFORM
from tests.integration.warehouse.test_loads import _tenant

pytestmark = [pytest.mark.postgres]


def _count(path: Path, tenant: Any) -> int:
    try:
        with duckdb.connect(str(path), read_only=True) as db:
            row = db.execute(
                "SELECT count(*) FROM governance_events WHERE tenant_id = ?", [str(tenant)]
            ).fetchone()
    except duckdb.Error:
        return -1  # locked by the writer, or not created yet
    return int(row[0]) if row else 0


def test_an_enabled_continuous_warehouse_is_loaded_by_its_own_worker(
    system: System, tmp_path: Path, unique: str
) -> None:
    assert system.integrations is not None
    tenant = _tenant(system, unique)
    path = tmp_path / "live.duckdb"
    config = {"provider": "duckdb", "database_path": str(path), "schedule": "continuous"}
    made = system.integrations.create(
        PLATFORM, tenant, CreateIntegration("data_warehouse", "Live", config)
    )
    runs = WarehouseRuns(system.projector_conninfo)
    supervisor = Supervisor([], backoff_seconds=0.1)
    supervisor.start()

    def worker_of(tenant_id: Any, integration_id: Any) -> Worker:
        loader = warehouse_loader(system, tenant_id, integration_id)
        return Worker(loader.name, lambda stop: loader.run(stop, poll_seconds=0.1), loader.close)

    fleet = SinkFleet(
        WarehouseRuns(system.projector_conninfo),
        lambda: supervisor,
        worker_of,
        name=WAREHOUSES,
        name_of=warehouse_name,
    )
    try:
        system.runner("integrations").catch_up()  # the read model the fleet lists
        fleet.reconcile()
        assert list(fleet.running) == [warehouse_name(made.id)]
        for n in range(3):
            system.tenants.update(PLATFORM, tenant, {"max_storage_gb": 200 + n})
        head = runs.head()
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            run = runs.last_run(tenant, made.id)
            if run is not None and run["watermark"] >= head:
                break
            time.sleep(0.1)
        else:
            pytest.fail(f"the worker did not load up to {head}: {run}")
        system.integrations.update(PLATFORM, tenant, made.id, {"enabled": False})
        system.runner("integrations").catch_up()
        fleet.reconcile()  # stops the worker: the file is free to read
        assert fleet.running == {}
        # tenant.created, integration.created, 3 tenant updates (and maybe the disabling)
        assert _count(path, tenant) in (5, 6)
    finally:
        fleet.stop_all()
        fleet.close()
        supervisor.stop()
        runs.close()
