"""Data-warehouse syncs over real HTTP, on the real database: a tenant admin creates a DuckDB
warehouse (secrets none here; the file under the server's data directory), syncs it with
`POST .../sync` and reads its status with `GET .../sync`; a monitor may read but not sync;
another tenant's warehouse is 404; a refused schema is an error envelope naming the column."""

from __future__ import annotations

from uuid import UUID

import duckdb
import httpx
import pytest

from domain.maci import MaciRole
from tests.peers.http import HASH, Api

pytestmark = [pytest.mark.e2e, pytest.mark.postgres]
H = {"X-Constitutional-Hash": HASH}


def test_a_tenant_admin_syncs_a_duckdb_warehouse_over_http(
    api: Api, platform: httpx.Client, unique: str
) -> None:
    tenant = UUID(api.create_tenant(platform, f"wh-{unique}")["tenant_id"])
    other = UUID(api.create_tenant(platform, f"wo-{unique}")["tenant_id"])
    admin = api.client(api.token(MaciRole.EXECUTIVE, tenant_id=tenant))
    monitor = api.client(api.token(MaciRole.MONITOR, tenant_id=tenant))
    outsider = api.client(api.token(MaciRole.EXECUTIVE, tenant_id=other))
    base = f"/v1/tenants/{tenant}/integrations"
    try:
        made = admin.post(
            base,
            json={
                "integration_type": "data_warehouse",
                "integration_name": "Lake",
                "config": {"provider": "duckdb", "schedule": "0 3 * * *"},
                "enabled": False,
                "constitutional_hash": HASH,
            },
        )
        assert made.status_code == 201, made.text
        iid = made.json()["integration_id"]
        before = monitor.get(f"{base}/{iid}/sync")
        assert before.status_code == 200, before.text
        assert before.json()["runs"] == 0
        assert before.json()["schedule"] == "0 3 * * *"
        refused = monitor.post(f"{base}/{iid}/sync", headers=H)
        assert refused.status_code == 403, refused.text
        assert outsider.get(f"{base}/{iid}/sync").status_code == 404
        no_hash = admin.post(f"{base}/{iid}/sync")
        assert no_hash.status_code in (400, 422), no_hash.text
        run = admin.post(f"{base}/{iid}/sync", headers=H)
        assert run.status_code == 200, run.text
        body = run.json()
        assert body["rows_loaded"] >= 2  # tenant.created, integration.created
        after = monitor.get(f"{base}/{iid}/sync").json()
        assert (after["runs"], after["watermark"], after["last_error"]) == (
            1,
            body["watermark"],
            None,
        )
        path = api.system.settings.data_dir / "warehouses" / f"{iid}.duckdb"
        with duckdb.connect(str(path)) as db:
            types = db.execute(
                "SELECT event_type FROM governance_events ORDER BY position"
            ).fetchall()
            assert ("tenant.created",) in types
            assert ("integration.created",) in types
            db.execute("ALTER TABLE audit_log ADD COLUMN my_note VARCHAR")
        broken = admin.post(f"{base}/{iid}/sync", headers=H)
        assert broken.status_code == 422, broken.text
        error = broken.json()["error"]
        assert error["code"] == "VALIDATION_ERROR"
        assert error["details"] == {"table": "audit_log", "column": "my_note"}
        assert "column my_note" in error["message"]
        status = monitor.get(f"{base}/{iid}/sync").json()
        assert "my_note" in status["last_error"]
    finally:
        for client in (admin, monitor, outsider):
            client.close()
