"""Two `acgs serve` processes on one database: an activation made through one reaches the other's
cached policy through the event log, and its decisions follow within seconds."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from uuid import UUID

import httpx
import pytest

from api.bootstrap import build
from api.settings import Settings
from api.tokens import issue_as_operator
from domain.maci import MaciRole
from domain.tenancy import SYSTEM_TENANT_ID
from tests.e2e.policy_support import activate, decide, rego, submitted
from tests.peers.http import HASH, wait_for
from tests.peers.serve import ServeProcess, acgs_env

pytestmark = [pytest.mark.e2e, pytest.mark.processes, pytest.mark.postgres, pytest.mark.slow]


class SharedServe(ServeProcess):
    """`acgs serve` on the session's database (and a data directory shared for the keys)."""

    database_url: str = ""

    @property
    def env(self) -> dict[str, str]:
        return acgs_env(self.data_dir, self.port, ACGS_DATABASE_URL=self.database_url)


def _metric(client: httpx.Client, name: str) -> float:
    text = client.get("/metrics").text
    found = re.search(rf"^{name} ([0-9.e+]+)$", text, re.MULTILINE)
    assert found, name
    return float(found.group(1))


@pytest.fixture
def two_processes(pg_admin_url: str, tmp_path: Path) -> Iterator[tuple[str, str, str]]:
    settings = Settings.from_env(
        {"ACGS_DATABASE_URL": pg_admin_url, "ACGS_DATA_DIR": str(tmp_path)}
    )
    system = build(settings)
    try:
        token = issue_as_operator(
            system,
            "pytest",
            tenant_id=SYSTEM_TENANT_ID,
            roles=(MaciRole.EXECUTIVE,),
            sub="cache-test",
            ttl_seconds=900,
        ).token
    finally:
        system.close()
    processes = []
    try:
        for _ in range(2):
            process = SharedServe(tmp_path)
            process.database_url = pg_admin_url
            processes.append(process.start())
        for process in processes:
            process.wait_ready()
        yield processes[0].url, processes[1].url, token
    finally:
        for process in processes:
            process.stop()


def test_an_activation_through_one_process_reaches_the_others_cache(
    two_processes: tuple[str, str, str], unique: str
) -> None:
    url_a, url_b, token = two_processes
    headers = {"Authorization": f"Bearer {token}"}
    with (
        httpx.Client(base_url=url_a, headers=headers, timeout=30) as a,
        httpx.Client(base_url=url_b, headers=headers, timeout=30) as b,
    ):
        created = a.post(
            "/v1/tenants",
            json={
                "tenant_name": f"Cache {unique}",
                "tenant_slug": f"cache-{unique}",
                "admin_email": "a@cache.example.com",
                "constitutional_hash": HASH,
            },
        )
        assert created.status_code == 201, created.text
        tenant = UUID(created.json()["tenant_id"])
        submitted(a, tenant, rego("door", "admin"))
        submitted(a, tenant, rego("door", "editor"))
        assert activate(a, tenant, "door", 1).status_code == 200
        editor = {"user": {"role": "editor"}}
        # B answers from version 1, and caches it: a second decision loads nothing more
        wait_for(lambda: _metric(b, "acgs_policy_cache_live") == 1, timeout=10)
        first = decide(b, tenant, "door", editor).json()
        assert (first["allow"], first["policy_version"]) == (False, 1)
        loads = _metric(b, "acgs_policy_cache_loads_total")
        for _ in range(3):
            assert decide(b, tenant, "door", editor).json()["policy_version"] == 1
        assert _metric(b, "acgs_policy_cache_loads_total") == loads
        # an activation through A reaches B
        assert activate(a, tenant, "door", 2).status_code == 200
        changed = wait_for(
            lambda: decide(b, tenant, "door", editor).json()["policy_version"] == 2, timeout=10
        )
        assert changed
        assert decide(b, tenant, "door", editor).json()["allow"] is True
        assert _metric(b, "acgs_policy_cache_invalidations_total") >= 1
        # and so does the rollback
        assert activate(a, tenant, "door", 1).json()["rolled_back"] is True
        wait_for(
            lambda: decide(b, tenant, "door", editor).json()["policy_version"] == 1, timeout=10
        )
