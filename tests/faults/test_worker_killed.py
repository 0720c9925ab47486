"""An `acgs worker` killed with SIGKILL in the middle of projecting a backlog (its runners apply
the log in batches, each batch and the new position in one transaction): the batch it was in is
rolled back with it, a new worker resumes from the last recorded position, and the read models
come out exact: one tenants row per tenant, one audit row per event, none missing, none twice.

(A worker killed mid-job, a migration job resumed from its checkpoint by another worker, is
test_migration_worker_killed.py.)"""

from __future__ import annotations

import signal
import time
from pathlib import Path
from typing import Any

import psycopg
import pytest

from api.bootstrap import build
from api.settings import Settings
from commands.tenants import CreateTenant
from domain.tenancy import SYSTEM_TENANT_ID
from tests.faults.conftest import RestartablePostgres, service_env, start_worker, stop_worker
from tests.integration.spine.support import PLATFORM
from tests.peers.http import wait_for

pytestmark = [pytest.mark.faults, pytest.mark.postgres, pytest.mark.slow]

TENANTS = 1000
PROJECTIONS = ("tenants", "audit_log")


def _positions(url: str) -> dict[str, int]:
    with psycopg.connect(url, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT name, position FROM projection_positions WHERE name = ANY(%s)",
            [list(PROJECTIONS)],
        ).fetchall()
    return {str(name): int(position) for name, position in rows}


def _head(url: str) -> int:
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute("SELECT coalesce(max(notification_id), 0) FROM governance_events")
        found = row.fetchone()
    return int(found[0]) if found else 0


def _counts(url: str) -> dict[str, Any]:
    with psycopg.connect(url, autocommit=True) as conn:
        tenants = conn.execute(
            "SELECT count(*), count(DISTINCT tenant_id) FROM tenants WHERE tenant_id <> %s",
            [SYSTEM_TENANT_ID],
        ).fetchone()
        events = conn.execute("SELECT count(*) FROM governance_events").fetchone()
        audit = conn.execute(
            "SELECT count(*), count(DISTINCT audit_id) FROM tenant_audit_log"
        ).fetchone()
        gaps = conn.execute(
            "SELECT count(*) FROM (SELECT e.tenant_id FROM governance_events e GROUP BY "
            "e.tenant_id HAVING count(*) <> (SELECT count(*) FROM tenant_audit_log a "
            "WHERE a.tenant_id = e.tenant_id)) AS differing"
        ).fetchone()
    assert tenants is not None
    assert events is not None
    assert audit is not None
    assert gaps is not None
    return {
        "tenant_rows": int(tenants[0]),
        "distinct_tenants": int(tenants[1]),
        "events": int(events[0]),
        "audit_rows": int(audit[0]),
        "distinct_audited_events": int(audit[1]),
        "tenants_whose_audit_differs": int(gaps[0]),
    }


def test_a_worker_killed_mid_batch_is_resumed_with_exact_read_models(
    restartable_postgres: RestartablePostgres, tmp_path: Path, figures: Any
) -> None:
    url = restartable_postgres.url
    settings = Settings.from_env({"ACGS_DATABASE_URL": url, "ACGS_DATA_DIR": str(tmp_path)})
    system = build(settings)  # its runners are not started: the backlog waits for the worker
    try:
        for n in range(TENANTS):
            system.tenants.create(
                PLATFORM, CreateTenant(f"Killed {n}", f"killed-{n}", "ops@killed.example.com")
            )
    finally:
        system.close()
    head = _head(url)
    env = service_env(tmp_path / "worker", ACGS_DATABASE_URL=url)
    log = tmp_path / "worker.log"

    first = start_worker(env, log, *PROJECTIONS)
    try:
        # killed as soon as it has recorded a batch of the backlog, while it applies the next
        moved = wait_for(
            lambda: (p := _positions(url)) and any(0 < v < head for v in p.values()) and p,
            timeout=90,
            interval=0.005,
        )
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=30)
    finally:
        if first.poll() is None:
            first.kill()
            first.wait()
    at_kill = _positions(url)
    assert any(position < head for position in at_kill.values()), (at_kill, head)

    second = start_worker(env, log, *PROJECTIONS)
    resumed_at = time.monotonic()
    try:
        wait_for(
            lambda: (p := _positions(url)) and all(p.get(n) == head for n in PROJECTIONS),
            timeout=120,
            interval=0.1,
        )
        caught_up_after = time.monotonic() - resumed_at
    finally:
        stop_worker(second)
    counts = _counts(url)
    assert counts["tenant_rows"] == counts["distinct_tenants"] == TENANTS
    assert counts["audit_rows"] == counts["distinct_audited_events"] == counts["events"]
    assert counts["tenants_whose_audit_differs"] == 0
    figures(
        events=counts["events"],
        head=head,
        positions_when_seen=moved,
        positions_at_kill=at_kill,
        tenant_rows=counts["tenant_rows"],
        audit_rows=counts["audit_rows"],
        duplicates=counts["audit_rows"] - counts["distinct_audited_events"],
        caught_up_after_restart_s=round(caught_up_after, 2),
    )
