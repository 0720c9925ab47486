"""The composition root's one list of background workers, and the status of the followers of the
log: one this deployment does not run (a relay while streaming is off) is shown as disabled and
its lag counts nowhere (status, metrics, readiness)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from click.testing import CliRunner

from api.bootstrap import AUDIT_EXPORTS, AUDIT_PARTITIONS, AUDIT_RETENTION, System
from api.cli.main import cli
from api.http.metrics import ApiMetrics
from api.settings import Settings
from domain.tenant.aggregate import Tenant
from tests.integration.spine.support import catch_up

pytestmark = pytest.mark.postgres
RELAY = "kafka_relay"


@pytest.fixture
def stale_relay_position(admin_conn: Any) -> Iterator[None]:
    """A relay position left behind by an earlier run with streaming on, far behind the log."""
    admin_conn.execute(
        "INSERT INTO projection_positions (name, position) VALUES (%s, 0) "
        "ON CONFLICT (name) DO UPDATE SET position = 0",
        [RELAY],
    )
    yield
    admin_conn.execute("DELETE FROM projection_positions WHERE name = %s", [RELAY])


@pytest.mark.usefixtures("stale_relay_position")
def test_a_relay_this_deployment_does_not_run_is_disabled_not_lagging(
    system: System, create_tenant: Callable[..., Tenant]
) -> None:
    assert system.relay is None  # streaming is off in this deployment
    create_tenant()
    catch_up(system)

    status = {s["name"]: s for s in system.projection_status()}
    assert status[RELAY]["enabled"] is False
    assert status["tenants"]["enabled"] is True
    assert RELAY not in {s["name"] for s in system.projection_status(own_only=True)}

    metrics = ApiMetrics(system.projection_status, system.worker_status).render().decode()
    assert f'acgs_projection_lag_seconds{{projection="{RELAY}"}}' not in metrics
    assert f'acgs_projection_lag_events{{projection="{RELAY}"}}' not in metrics
    assert f'acgs_projection_enabled{{projection="{RELAY}"}} 0.0' in metrics
    assert 'acgs_projection_lag_seconds{projection="tenants"}' in metrics
    assert 'acgs_projection_enabled{projection="tenants"} 1.0' in metrics


@pytest.mark.usefixtures("stale_relay_position")
def test_projections_status_shows_a_disabled_relay_as_disabled(
    system: System, settings: Settings, create_tenant: Callable[..., Tenant]
) -> None:
    create_tenant()
    catch_up(system)
    env = {"ACGS_DATABASE_URL": settings.database_url, "ACGS_DATA_DIR": str(settings.data_dir)}
    result = CliRunner().invoke(cli, ["projections", "status"], env=env)
    assert result.exit_code == 0, result.output
    lines = {line.split()[0]: line for line in result.output.splitlines()}
    assert "disabled" in lines[RELAY]
    assert "behind" not in lines[RELAY]
    assert "behind" in lines["tenants"]


def test_serve_and_worker_share_one_list_with_partition_maintenance(system: System) -> None:
    names = system.worker_names()
    # streaming off: no relay
    assert names == [
        AUDIT_PARTITIONS,
        AUDIT_EXPORTS,
        AUDIT_RETENTION,
        "decision_log",
        "policy_cache",
        "tenants",
        "audit_log",
        "integrations",
        "policies",
        "role_mappings",
        "gap_reviews",
        "migrations",
        "webhooks",
        "integration_health",
        "role_cache",
        "sinks",
        "webhook_deliveries",
        "warehouses",
        "migration_jobs",
    ]
    assert system.followers() == [
        "tenants",
        "audit_log",
        "integrations",
        "policies",
        "role_mappings",
        "gap_reviews",
        "migrations",
        "webhooks",
    ]
