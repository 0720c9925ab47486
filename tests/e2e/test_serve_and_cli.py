"""`acgs serve` on a fresh data directory prints a platform token on first start; the README's
curl flow works with it; `acgs token issue` against the same data directory while the server
runs finds its embedded PostgreSQL (never starts a second one) and issues audited tokens."""

from __future__ import annotations

import signal
import subprocess
import time
from collections.abc import Iterator

import httpx
import pytest

from tests.peers.http import HASH
from tests.peers.scratch import scratch_dir
from tests.peers.serve import ACGS, ServeProcess

pytestmark = [pytest.mark.e2e, pytest.mark.postgres, pytest.mark.slow]


@pytest.fixture(scope="module")
def served() -> Iterator[ServeProcess]:
    with scratch_dir("acgs-serve-") as data_dir:
        process = ServeProcess(data_dir).start()
        try:
            yield process.wait_ready()
        finally:
            assert process.stop(signal.SIGINT) == 0, process.lines


def _bootstrap_token(served: ServeProcess) -> str:
    return served.bootstrap_token()


def test_first_start_prints_a_platform_executive_token_and_the_curl_flow_works(
    served: ServeProcess,
) -> None:
    token = _bootstrap_token(served)
    assert token.count(".") == 2
    assert (served.data_dir / "bootstrap-token-issued").exists()
    hdr = {"Authorization": f"Bearer {token}", "X-Constitutional-Hash": HASH}
    with httpx.Client(base_url=served.url, headers=hdr, timeout=30) as http:
        created = http.post(
            "/v1/tenants",
            json={
                "tenant_name": "Acme Corporation",
                "tenant_slug": "acme-corp",
                "admin_email": "admin@acme.com",
                "billing_plan": "enterprise",
                "max_requests_per_minute": 5000,
                "max_storage_gb": 100,
                "max_concurrent_connections": 500,
            },
        )
        assert created.status_code == 201, created.text
        tenant_id = created.json()["tenant_id"]
        read = _eventually(lambda: http.get(f"/v1/tenants/{tenant_id}"))
        assert read.json()["tenant_slug"] == "acme-corp"
        assert http.get("/v1/tenants").json()["total"] >= 2
        updated = http.patch(f"/v1/tenants/{tenant_id}", json={"max_requests_per_minute": 10000})
        assert updated.json()["updated_fields"] == ["max_requests_per_minute"]
        assert http.delete(f"/v1/tenants/{tenant_id}").json()["status"] == "deactivated"
        assert http.post(f"/v1/tenants/{tenant_id}/reactivate").json()["status"] == "active"


def test_token_issue_works_against_the_running_server(served: ServeProcess) -> None:
    hdr = {"Authorization": f"Bearer {_bootstrap_token(served)}", "X-Constitutional-Hash": HASH}
    with httpx.Client(base_url=served.url, headers=hdr, timeout=30) as http:
        created = http.post(
            "/v1/tenants",
            json={
                "tenant_name": "Globex",
                "tenant_slug": "globex",
                "admin_email": "it@globex.example.com",
            },
        )
        assert created.status_code == 201, created.text
    tenant_id = created.json()["tenant_id"]
    pg_pid = (served.data_dir / "pg" / "postmaster.pid").read_text().splitlines()[0]
    issued = subprocess.run(
        [
            *ACGS,
            "token",
            "issue",
            "--role",
            "EXECUTIVE",
            "--tenant",
            "globex",
            "--sub",
            "globex-admin",
            "--ttl",
            "600",
        ],
        env=served.env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert issued.returncode == 0, issued.stderr
    token = issued.stdout.strip()
    assert token.count(".") == 2
    assert "\n" not in token
    assert f"for tenant {tenant_id}" in issued.stderr
    # the same database server: the CLI did not start (or stop) another one
    assert (served.data_dir / "pg" / "postmaster.pid").read_text().splitlines()[0] == pg_pid
    with httpx.Client(
        base_url=served.url, timeout=30, headers={"Authorization": f"Bearer {token}"}
    ) as own:
        assert own.get(f"/v1/tenants/{tenant_id}").status_code == 200
        assert own.get("/v1/tenants").status_code == 403  # a tenant principal cannot list
    keys = subprocess.run(
        [*ACGS, "token", "keys", "list"],
        env=served.env,
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    assert "(signing)" in keys.stdout
    refused = subprocess.run(
        [*ACGS, "token", "issue", "--role", "EXECUTIVE", "--tenant", "no-such-tenant"],
        env=served.env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert refused.returncode != 0
    assert refused.stdout == ""
    assert "no active tenant" in refused.stderr


def _eventually(get: object) -> httpx.Response:
    deadline = time.monotonic() + 10
    while True:
        response = get()  # type: ignore[operator]
        if response.status_code == 200 or time.monotonic() > deadline:
            return response  # type: ignore[no-any-return]
        time.sleep(0.05)
