"""PostgreSQL stopped (immediate: as a crash) and started again while clients create tenants
through a real `acgs serve`: during the outage every request is answered within a bound, writes
with 503 and the error envelope, /readyz not ready; after the restart the same process serves
again by itself; every tenant that got a 201 is in the event log exactly once, and the read
models equal the log (one tenants row per created tenant, one audit row per event)."""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path
from uuid import UUID

import httpx
import psycopg
import pytest

from domain.tenancy import SYSTEM_TENANT_ID
from tests.faults.conftest import (
    ANSWER_BOUND_SECONDS,
    FaultServe,
    RestartablePostgres,
    assert_envelope,
)
from tests.faults.load import TenantLoad
from tests.peers.http import wait_for

pytestmark = [pytest.mark.faults, pytest.mark.postgres, pytest.mark.e2e]

OUTAGE_SECONDS = 3.0


def _log_and_read_models(url: str) -> tuple[Counter[UUID], dict[UUID, int], dict[UUID, int]]:
    """Tenant-created events per tenant in the log, tenants rows per tenant, and per tenant
    (events in the log, audit rows)."""
    with psycopg.connect(url, autocommit=True) as conn:
        created = Counter(
            UUID(str(row[0]))
            for row in conn.execute(
                "SELECT originator_id FROM governance_events "
                "WHERE topic LIKE %s AND originator_version = 1 AND originator_id <> %s",
                ["%Tenant.Created", SYSTEM_TENANT_ID],
            )
        )
        rows = dict(
            conn.execute(
                "SELECT tenant_id, count(*) FROM tenants WHERE tenant_id <> %s GROUP BY tenant_id",
                [SYSTEM_TENANT_ID],
            ).fetchall()
        )
        audit_gap = dict(
            conn.execute(
                "SELECT e.tenant_id, count(*) - (SELECT count(*) FROM tenant_audit_log a "
                "WHERE a.tenant_id = e.tenant_id) FROM governance_events e "
                "WHERE e.tenant_id <> %s GROUP BY e.tenant_id",
                [SYSTEM_TENANT_ID],
            ).fetchall()
        )
    return created, rows, audit_gap


def test_postgres_restarted_under_write_load_loses_nothing_and_recovers_by_itself(
    restartable_postgres: RestartablePostgres, tmp_path: Path, figures: object
) -> None:
    pg = restartable_postgres
    serve = FaultServe(tmp_path / "serve", extra={"ACGS_DATABASE_URL": pg.url})
    serve.start()
    try:
        serve.wait_ready()
        token = serve.bootstrap_token()
        with TenantLoad(serve.url, token) as load:
            wait_for(lambda: len(load.created) >= 10, timeout=60)
            pg.stop()
            stopped_at = time.monotonic()
            readyz: list[httpx.Response] = []
            while time.monotonic() - stopped_at < OUTAGE_SECONDS:
                readyz.append(httpx.get(f"{serve.url}/readyz", timeout=ANSWER_BOUND_SECONDS))
                time.sleep(0.2)
            pg.start()
            started_at = time.monotonic()
            wait_for(lambda: load.created_since(started_at), timeout=60, interval=0.05)
            recovered_after = load.first_created_since(started_at)
            wait_for(lambda: load.created_since(started_at) >= 10, timeout=60)
        assert serve.process is not None
        assert serve.process.poll() is None  # the same process, never restarted

        assert load.other == [], load.other[:5]  # no 500, no hang, no dropped connection
        assert load.slowest < ANSWER_BOUND_SECONDS
        during = [r for at, r in load.refused if at >= stopped_at - 1]
        assert during, "no write was refused while the database was down"
        for _, response in load.refused:
            assert_envelope(response, "DEPENDENCY_UNAVAILABLE")
        assert readyz, "readiness was not asked during the outage"
        for response in readyz:
            assert response.status_code == 503, response.text
            assert response.json()["status"] == "not_ready"

        accepted = [tenant for _, tenant in load.created]
        assert len(set(accepted)) == len(accepted)

        def settled() -> tuple[Counter[UUID], dict[UUID, int], dict[UUID, int]] | None:
            found = _log_and_read_models(pg.url)
            created, rows, audit_gap = found
            up_to_date = set(rows) == set(created) and not any(audit_gap.values())
            return found if up_to_date else None

        in_log, read_model, audit_gap = wait_for(settled, timeout=60, interval=0.2)
        assert set(accepted) <= set(in_log)  # every 201 is in the log
        assert all(n == 1 for n in in_log.values())  # exactly once
        assert read_model == dict.fromkeys(in_log, 1)  # the read model equals the log
        assert not any(audit_gap.values())  # one audit row per event
        figures(
            accepted=len(accepted),
            refused_503=len(load.refused),
            in_log=len(in_log),
            in_read_model=len(read_model),
            committed_but_refused=len(in_log) - len(accepted),
            readyz_503=len(readyz),
            slowest_answer_s=round(load.slowest, 2),
            outage_s=OUTAGE_SECONDS,
            recovered_after_restart_s=round(recovered_after, 2),
        )
    finally:
        serve.stop()
