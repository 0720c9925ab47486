"""Readiness over real HTTP on a PostgreSQL cluster of the test's own (it is stopped here):
`/readyz` answers 503 while the database is unreachable or a projection lags more than 5 s
behind the log, 200 otherwise; `/healthz` (liveness) stays 200 throughout."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import Any

import httpx
import psycopg
import pytest

from api.bootstrap import System, build
from api.http.app import create_app
from api.settings import Settings
from commands.tenants import CreateTenant
from infra.postgres.embedded import EmbeddedPostgres
from tests.integration.spine.support import PLATFORM
from tests.peers.http import serving
from tests.peers.postgres import throwaway_postgres
from tests.peers.scratch import scratch_dir

pytestmark = [pytest.mark.e2e, pytest.mark.postgres]


@dataclass
class Served:
    url: str
    system: System
    server: EmbeddedPostgres
    admin_url: str


# Every projection the service runs but the audit log.
OTHER_PROJECTIONS = (
    "tenants",
    "integrations",
    "policies",
    "role_mappings",
    "gap_reviews",
    "migrations",
    "webhooks",
)


@pytest.fixture
def served() -> Iterator[Served]:
    with (
        scratch_dir("acgs-readyz-") as data_dir,
        throwaway_postgres(data_dir / "pg") as (server, admin_url),
    ):
        settings = Settings.from_env(
            {"ACGS_DATABASE_URL": admin_url, "ACGS_DATA_DIR": str(data_dir / "data")}
        )
        system = build(settings, apply_migrations=False)
        try:
            for runner in system.runners:  # positions recorded, projections at the head
                runner.catch_up()
            with serving(create_app(system)) as url:
                yield Served(url, system, server, admin_url)
        finally:
            system.close()


def _ready(served: Served) -> httpx.Response:
    return httpx.get(f"{served.url}/readyz", timeout=60)


def _recorded_seconds_ago(served: Served, seconds: float) -> None:
    """Make the events the projections have not applied yet look `seconds` old (instead of
    waiting that long): the test's own cluster, so its immutability trigger may be lifted."""
    with psycopg.connect(served.admin_url, autocommit=True) as conn:
        conn.execute("ALTER TABLE governance_events DISABLE TRIGGER governance_events_immutable")
        conn.execute(
            "UPDATE governance_events SET recorded_at = now() - make_interval(secs => %s) "
            "WHERE notification_id > (SELECT min(position) FROM projection_positions)",
            [seconds],
        )
        conn.execute("ALTER TABLE governance_events ENABLE TRIGGER governance_events_immutable")


def test_readyz_is_503_while_a_projection_lags_beyond_5_seconds(served: Served) -> None:
    first = _ready(served)
    assert first.status_code == 200, first.text
    assert first.json() == {
        "status": "ready",
        "checks": {"database": "ok", "projections": "ok", "audit": "ok", "workers": "ok"},
        "quotas": {"store": "memory", "shared": False},
    }

    served.system.tenants.create(PLATFORM, CreateTenant("Lagging", "lagging", "l@example.com"))
    _recorded_seconds_ago(served, 4.0)  # behind, but within the threshold
    assert _ready(served).status_code == 200

    _recorded_seconds_ago(served, 6.0)
    lagging = _ready(served)
    assert lagging.status_code == 503, lagging.text
    body: dict[str, Any] = lagging.json()
    assert body["status"] == "not_ready"
    assert body["checks"]["database"] == "ok"
    behind = {p["name"]: p for p in body["checks"]["projections"]["lagging"]}
    assert set(behind) == {"audit_log", *OTHER_PROJECTIONS}
    for row in behind.values():
        assert row["events_behind"] == 1  # the tenant's creation
        assert 6.0 <= row["seconds_behind"] < 60
    assert httpx.get(f"{served.url}/healthz").status_code == 200  # alive all the same

    served.system.runner("tenants").catch_up()
    served.system.runner("integrations").catch_up()
    still = _ready(served)
    assert still.status_code == 503
    lagging = [p["name"] for p in still.json()["checks"]["projections"]["lagging"]]
    assert lagging == [
        "audit_log",
        "gap_reviews",
        "migrations",
        "policies",
        "role_mappings",
        "webhooks",
    ]
    served.system.runner("audit_log").catch_up()
    served.system.runner("migrations").catch_up()
    served.system.runner("policies").catch_up()
    served.system.runner("role_mappings").catch_up()
    served.system.runner("gap_reviews").catch_up()
    served.system.runner("webhooks").catch_up()
    assert _ready(served).status_code == 200


def test_readyz_is_503_while_the_database_is_down(served: Served) -> None:
    assert _ready(served).status_code == 200
    served.server.stop()
    down = _ready(served)
    assert down.status_code == 503, down.text
    body = down.json()
    assert body["status"] == "not_ready"
    assert body["checks"]["database"].startswith("unavailable: ")
    assert "password" not in down.text
    assert "postgresql://" not in down.text
    assert httpx.get(f"{served.url}/healthz").status_code == 200  # alive all the same


def _metric(served: Served, name: str) -> float:
    text = httpx.get(f"{served.url}/metrics").text
    [line] = [line for line in text.splitlines() if line.startswith(name + " ")]
    return float(line.split()[1])


def test_readyz_is_degraded_while_the_audit_log_lags_and_metrics_count_the_gap(
    served: Served,
) -> None:
    served.system.settings = replace(served.system.settings, audit_lag_events=2)
    for n in range(3):
        served.system.tenants.create(PLATFORM, CreateTenant(f"Gap {n}", f"gap-{n}", "g@x.com"))
    # Only the audit log is left behind (the others caught up, so none lags by seconds however
    # slow the machine).
    for name in OTHER_PROJECTIONS:
        served.system.runner(name).catch_up()
    events_in = _metric(served, "acgs_audit_events_in_total")
    assert _metric(served, "acgs_audit_rows_out_total") == events_in - 3
    assert _metric(served, "acgs_audit_rows_missing") == 3
    degraded = _ready(served)
    assert degraded.status_code == 503, degraded.text
    body = degraded.json()
    assert body["status"] == "degraded"
    assert body["checks"]["audit"] == {"events_behind": 3, "threshold": 2}
    assert body["checks"]["database"] == "ok"
    served.system.runner("audit_log").catch_up()
    assert _metric(served, "acgs_audit_rows_missing") == 0
    assert _metric(served, "acgs_audit_rows_out_total") == events_in
    ready = _ready(served)
    assert ready.json()["status"] == "ready", ready.text
