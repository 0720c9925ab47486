"""The fuzzing world: a server of its own over the session's system and database, three real
principals, and tenants whose data must never reach a principal of another tenant.

The fuzzer sends thousands of requests a minute; a server of its own keeps its rate-limit and
concurrency counters away from the session server the other suites use (the database, the
event log and the projections are the session's). The platform principal's tenant (the system
tenant) gets a generous request quota while the fuzzing runs; its profile and quotas are
restored afterwards (the platform fuzzer may change them, as it may any tenant's).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from uuid import UUID

import httpx
import pytest
import uvicorn

from api.http.app import create_app
from domain.maci import MaciRole
from domain.tenancy import SYSTEM_TENANT_ID
from tests.fuzz.world import (
    GENEROUS_QUOTA,
    SYSTEM_FIELDS,
    Principal,
    World,
    restore_the_platform,
)
from tests.peers.http import Api, free_port, wait_for

# Examples per operation and principal: bounded in `make test`, more with `make fuzz`.


@pytest.fixture(scope="module")
def fuzz_server(api: Api) -> Iterator[str]:
    """The app served again on another port. Lifespan off: the session server owns the pool."""
    app = create_app(api.system)
    port = free_port()
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=port,
        log_level="critical",
        access_log=False,
        lifespan="off",
        ws="none",
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="fuzz-api-server", daemon=True)
    thread.start()
    wait_for(lambda: server.started or not thread.is_alive(), timeout=30)
    if not server.started:
        pytest.fail("the fuzzing API server did not start")
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)


@pytest.fixture(scope="module")
def projections_following(world: World) -> Iterator[None]:
    """Keep the read models up with the log while the fuzzer writes, as `acgs serve` does (the
    session server leaves its runners to the tests), so /readyz stays ready."""
    stop = threading.Event()

    def follow() -> None:
        while not stop.wait(0.5):
            world.api.wait_projected()

    thread = threading.Thread(target=follow, name="fuzz-projections", daemon=True)
    thread.start()
    yield
    stop.set()
    thread.join(timeout=30)


@pytest.fixture(scope="module")
def world(api: Api, fuzz_server: str) -> Iterator[World]:
    suffix = os.urandom(4).hex()
    platform_token = api.token(MaciRole.EXECUTIVE, sub="fuzz-platform")
    with httpx.Client(
        base_url=fuzz_server, headers={"Authorization": f"Bearer {platform_token}"}, timeout=30
    ) as platform:
        system = platform.get(f"/v1/tenants/{SYSTEM_TENANT_ID}").json()
        before = {k: system[k] for k in SYSTEM_FIELDS}
        restore_the_platform(api, {**before, "max_requests_per_minute": GENEROUS_QUOTA})
        try:
            own = api.create_tenant(
                platform, f"fuzz-own-{suffix}", max_requests_per_minute=GENEROUS_QUOTA
            )
            other = api.create_tenant(platform, f"fuzz-other-{suffix}")
            own_id = UUID(own["tenant_id"])
            principals = {
                "platform": Principal("platform", platform_token, SYSTEM_TENANT_ID),
                "tenant_admin": Principal(
                    "tenant_admin",
                    api.token(MaciRole.EXECUTIVE, tenant_id=own_id, sub="fuzz-admin"),
                    own_id,
                ),
                "low_role": Principal(
                    "low_role",
                    api.token(MaciRole.MONITOR, tenant_id=own_id, sub="fuzz-monitor"),
                    own_id,
                ),
            }
            yield World(
                url=fuzz_server,
                api=api,
                principals=principals,
                own_tenant=own,
                other_tenant=other,
                secrets=[p.token for p in principals.values()],
            )
        finally:
            restore_the_platform(api, before)
