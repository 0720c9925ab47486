"""Quotas shared through Redis: two `acgs serve` processes on one database and one real
redis-server hold one tenant to one budget, and readiness says which store counts and what happens
when it is unreachable (failing open: degraded but serving; failing closed: not ready, 503)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from uuid import UUID

import httpx
import pytest

from api.bootstrap import build
from api.settings import Settings
from api.tokens import issue_as_operator
from domain.maci import MaciRole
from domain.tenancy import SYSTEM_TENANT_ID
from tests.e2e.test_policy_cache_processes import SharedServe
from tests.peers.http import HASH, wait_for
from tests.peers.redis import Redis, running_redis
from tests.peers.serve import acgs_env

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.processes,
    pytest.mark.postgres,
    pytest.mark.redis,
    pytest.mark.slow,
]


@dataclass
class RedisServe(SharedServe):
    redis_url: str = ""
    on_failure: str = "open"

    @property
    def env(self) -> dict[str, str]:
        return acgs_env(
            self.data_dir,
            self.port,
            ACGS_DATABASE_URL=self.database_url,
            ACGS_REDIS_URL=self.redis_url,
            ACGS_REDIS_ON_FAILURE=self.on_failure,
        )


def _token(pg_admin_url: str, data_dir: Path, tenant_id: UUID = SYSTEM_TENANT_ID) -> str:
    settings = Settings.from_env(
        {"ACGS_DATABASE_URL": pg_admin_url, "ACGS_DATA_DIR": str(data_dir)}
    )
    system = build(settings)
    try:
        return issue_as_operator(
            system,
            "pytest",
            tenant_id=tenant_id,
            roles=(MaciRole.EXECUTIVE,),
            sub="quota-test",
            ttl_seconds=900,
        ).token
    finally:
        system.close()


def _serve(pg_admin_url: str, data_dir: Path, redis: Redis, on_failure: str) -> RedisServe:
    process = RedisServe(data_dir)
    process.database_url = pg_admin_url
    process.redis_url = redis.url
    process.on_failure = on_failure
    return process


@pytest.fixture
def two_servers(pg_admin_url: str, tmp_path: Path, redis_server: Redis) -> Iterator[list[str]]:
    processes = [_serve(pg_admin_url, tmp_path, redis_server, "open").start() for _ in "ab"]
    try:
        for process in processes:
            process.wait_ready()
        yield [process.url for process in processes]
    finally:
        for process in processes:
            process.stop()


def test_two_processes_hold_a_tenant_to_one_budget(
    two_servers: list[str], pg_admin_url: str, tmp_path: Path, unique: str
) -> None:
    platform = {"Authorization": f"Bearer {_token(pg_admin_url, tmp_path)}"}
    with httpx.Client(base_url=two_servers[0], timeout=30, headers=platform) as a:
        created = a.post(
            "/v1/tenants",
            json={
                "tenant_name": f"Quota {unique}",
                "tenant_slug": f"quota-{unique}",
                "admin_email": "q@quota.example.com",
                "max_requests_per_minute": 40,
                "constitutional_hash": HASH,
            },
        )
        assert created.status_code == 201, created.text
    tenant_id = UUID(created.json()["tenant_id"])
    for url in two_servers:  # both know the tenant (the platform's own budget is apart)
        with httpx.Client(base_url=url, timeout=30, headers=platform) as client:
            wait_for(lambda c=client: c.get(f"/v1/tenants/{tenant_id}").status_code == 200)
    own = {"Authorization": f"Bearer {_token(pg_admin_url, tmp_path, tenant_id)}"}
    statuses: list[int] = []
    remaining: list[int] = []
    with (
        httpx.Client(base_url=two_servers[0], timeout=30, headers=own) as a,
        httpx.Client(base_url=two_servers[1], timeout=30, headers=own) as b,
    ):
        for i in range(100):
            response = (a if i % 2 else b).get(f"/v1/tenants/{tenant_id}")
            statuses.append(response.status_code)
            remaining.append(int(response.headers["x-ratelimit-remaining"]))
        ready = a.get("/readyz").json()
    assert statuses.count(200) == 40, statuses  # one budget for both processes
    assert statuses.count(429) == 60
    assert remaining[:40] == list(range(39, -1, -1))  # counted down across both processes
    assert ready["quotas"] == {"store": "redis", "shared": True, "on_failure": "open"}
    assert ready["checks"]["quotas"] == "ok"


@pytest.mark.parametrize(
    ("on_failure", "code", "status"), [("open", 200, "degraded"), ("closed", 503, "not_ready")]
)
def test_readiness_reports_an_unreachable_quota_store(
    pg_admin_url: str, tmp_path: Path, on_failure: str, code: int, status: str
) -> None:
    with running_redis() as redis:
        process = _serve(pg_admin_url, tmp_path, redis, on_failure).start()
        try:
            process.wait_ready()
            with httpx.Client(base_url=process.url, timeout=30) as client:
                assert client.get("/readyz").json()["checks"]["quotas"] == "ok"
                redis.stop()

                def reported() -> Any:
                    response = client.get("/readyz")
                    return response if response.json()["checks"].get("quotas") != "ok" else None

                ready = wait_for(reported, timeout=10)
                assert ready.status_code == code, ready.text
                body = ready.json()
                assert body["status"] == status
                assert body["quotas"]["on_failure"] == on_failure
                assert redis.url not in ready.text
                redis.start()
                wait_for(lambda: client.get("/readyz").json()["checks"]["quotas"] == "ok")
        finally:
            process.stop()
