"""Several processes on one database, as a scaled-out deployment runs: two `acgs serve` and one
`acgs worker`. A signing key retired through the CLI is refused by both API processes within a
second; each single-owner worker (sinks, webhook deliveries, warehouse loads, health checks) runs
in exactly one of the three and another takes over within seconds when its owner is killed;
tenants created through both API processes are each projected once."""

from __future__ import annotations

import base64
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from uuid import UUID

import httpx
import psycopg
import pytest

from api.bootstrap import SINGLE_OWNER, build
from api.settings import Settings
from api.tokens import issue_as_operator
from domain.maci import MaciRole
from domain.tenancy import SYSTEM_TENANT_ID
from infra.postgres.worker_lease import lock_key
from tests.e2e.test_policy_cache_processes import SharedServe
from tests.peers.http import HASH, wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.processes, pytest.mark.postgres, pytest.mark.slow]
ACGS = [sys.executable, "-c", "from api.cli.main import cli; cli()"]


@dataclass
class Deployment:
    a: SharedServe
    b: SharedServe
    worker: subprocess.Popen[str]
    token: str
    env: dict[str, str]
    admin_url: str


@pytest.fixture(scope="module")
def deployment(pg_admin_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    data_dir = tmp_path_factory.mktemp("scaled")
    settings = Settings.from_env(
        {"ACGS_DATABASE_URL": pg_admin_url, "ACGS_DATA_DIR": str(data_dir)}
    )
    system = build(settings)
    try:
        token = issue_as_operator(
            system, "pytest", tenant_id=SYSTEM_TENANT_ID, roles=(MaciRole.EXECUTIVE,),
            sub="scaled-test", ttl_seconds=3600,
        ).token  # fmt: skip
    finally:
        system.close()
    env = {k: v for k, v in os.environ.items() if not k.startswith("ACGS_")}
    env.update(
        ACGS_DATABASE_URL=pg_admin_url, ACGS_DATA_DIR=str(data_dir), ACGS_LOG_LEVEL="WARNING"
    )
    servers = []
    worker = None
    try:
        for _ in range(2):
            server = SharedServe(data_dir)
            server.database_url = pg_admin_url
            servers.append(server.start())
        for server in servers:
            server.wait_ready()
        worker = subprocess.Popen(
            [*ACGS, "worker"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        wait_for(lambda: set(_held(pg_admin_url)) == SINGLE_OWNER, timeout=60)
        yield Deployment(servers[0], servers[1], worker, token, env, pg_admin_url)
    finally:
        if worker is not None and worker.poll() is None:
            worker.send_signal(signal.SIGTERM)
            try:
                worker.wait(timeout=30)
            except subprocess.TimeoutExpired:
                worker.kill()
                worker.wait()
        for server in servers:
            server.stop()


def _held(admin_url: str) -> dict[str, int]:
    """The single-owner workers whose lease is held now, with the backend pid holding it."""
    with psycopg.connect(admin_url, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT classid::bigint, objid::bigint, pid FROM pg_locks "
            "WHERE locktype = 'advisory' AND granted AND objsubid = 1"
        ).fetchall()
    held = {((c << 32) | o): pid for c, o, pid in rows}
    keys = {name: lock_key(name) & 0xFFFFFFFFFFFFFFFF for name in SINGLE_OWNER}
    return {name: held[key] for name, key in keys.items() if key in held}


def _standby(url: str) -> dict[str, float]:
    text = httpx.get(f"{url}/metrics", timeout=10).text
    found = {}
    for line in text.splitlines():
        if line.startswith("acgs_worker_standby{"):
            name = line.split('worker="', 1)[1].split('"', 1)[0]
            found[name] = float(line.rsplit(" ", 1)[1])
    return found


def _acgs(env: dict[str, str], *args: str) -> str:
    done = subprocess.run(
        [*ACGS, *args], env=env, capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def _kid(token: str) -> str:
    header = token.split(".", 1)[0]
    return str(json.loads(base64.urlsafe_b64decode(header + "=" * (-len(header) % 4)))["kid"])


def test_each_single_owner_worker_runs_in_one_process(deployment: Deployment) -> None:
    held = _held(deployment.admin_url)
    assert set(held) == SINGLE_OWNER  # every one of them runs somewhere, one lease each
    a, b = _standby(deployment.a.url), _standby(deployment.b.url)
    for name in SINGLE_OWNER:
        assert (a[name], b[name]).count(0.0) <= 1, (name, a, b)  # never in both API processes


def test_a_key_retired_through_the_cli_is_refused_by_both_processes_within_a_second(
    deployment: Deployment,
) -> None:
    _acgs(deployment.env, "token", "keys", "add")
    token = _acgs(deployment.env, "token", "issue", "--platform", "--role", "AUDITOR")
    headers = {"Authorization": f"Bearer {token}"}
    # The clients are made, and connected, before the key is retired: only the answers are timed.
    clients = [
        httpx.Client(base_url=url, headers=headers, timeout=10)
        for url in (deployment.a.url, deployment.b.url)
    ]
    for client in clients:
        assert client.get("/v1/auth/me").status_code == 200
    _acgs(deployment.env, "token", "keys", "add")  # the retired key cannot be the last one
    _acgs(deployment.env, "token", "keys", "retire", _kid(token))
    retired_at = time.monotonic()  # the CLI has returned: the key is retired on disk
    refused_after: dict[str, float] = {}
    with ThreadPoolExecutor(2) as pool:

        def refused(client: httpx.Client) -> None:
            while client.get("/v1/auth/me").status_code != 401:
                assert time.monotonic() - retired_at < 5.0, f"{client.base_url} still accepts it"
                time.sleep(0.01)
            refused_after[str(client.base_url)] = time.monotonic() - retired_at

        try:
            list(pool.map(refused, clients))
        finally:
            for client in clients:
                client.close()
    assert all(seconds < 1.0 for seconds in refused_after.values()), refused_after


def test_tenants_created_through_both_processes_are_projected_once(
    deployment: Deployment, unique: str
) -> None:
    headers = {"Authorization": f"Bearer {deployment.token}", "X-Constitutional-Hash": HASH}
    created: list[UUID] = []
    with (
        httpx.Client(base_url=deployment.a.url, headers=headers, timeout=30) as a,
        httpx.Client(base_url=deployment.b.url, headers=headers, timeout=30) as b,
    ):
        for n in range(12):
            client = a if n % 2 else b
            response = client.post(
                "/v1/tenants",
                json={
                    "tenant_name": f"Scaled {unique} {n}",
                    "tenant_slug": f"scaled-{unique}-{n}",
                    "admin_email": "ops@scaled.example.com",
                },
            )
            assert response.status_code == 201, response.text
            created.append(UUID(response.json()["tenant_id"]))

    def projected() -> list[tuple[UUID, int, int]] | None:
        with psycopg.connect(deployment.admin_url, autocommit=True) as conn:
            rows = conn.execute(
                "SELECT t.tenant_id, (SELECT count(*) FROM tenants WHERE tenant_id = t.tenant_id),"
                " (SELECT count(*) FROM tenant_audit_log a WHERE a.tenant_id = t.tenant_id) "
                "FROM unnest(%s::uuid[]) AS t(tenant_id)",
                [created],
            ).fetchall()
        return rows if all(audit > 0 and row == 1 for _, row, audit in rows) else None

    rows = wait_for(projected, timeout=30)
    with psycopg.connect(deployment.admin_url, autocommit=True) as conn:
        events = dict(
            conn.execute(
                "SELECT tenant_id, count(*) FROM governance_events "
                "WHERE tenant_id = ANY(%s) GROUP BY tenant_id",
                [created],
            ).fetchall()
        )
    # one audit row per event of each tenant: none lost, none applied twice
    assert {tenant: audit for tenant, _, audit in rows} == {t: events[t] for t in created}


def test_a_killed_owner_is_replaced_within_seconds(deployment: Deployment) -> None:
    before = _held(deployment.admin_url)
    # kill the process running the sinks (its connections go, and its leases with them)
    owner = _process_of(deployment, "sinks")
    killed_at = time.monotonic()
    owner.send_signal(signal.SIGKILL)
    owner.wait(timeout=30)

    def taken_over() -> dict[str, int] | None:
        held = _held(deployment.admin_url)
        fresh = set(held) == SINGLE_OWNER and held["sinks"] != before["sinks"]
        return held if fresh else None

    after = wait_for(taken_over, timeout=30)
    took = time.monotonic() - killed_at
    assert set(after) == SINGLE_OWNER
    assert took < 5.0, f"takeover took {took:.1f} s"


def _process_of(deployment: Deployment, name: str) -> subprocess.Popen[str]:
    """The process running the single-owner worker `name`: an API process that does not stand
    by for it (its /metrics), else the worker process."""
    for server in (deployment.a, deployment.b):
        if _standby(server.url)[name] == 0.0:
            assert server.process is not None
            return server.process
    return deployment.worker
