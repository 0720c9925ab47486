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
from dataclasses import dataclass, field
from uuid import UUID

import httpx
import pytest
import uvicorn

from api.http.app import create_app
from commands.context import CommandContext
from commands.context import Principal as Principal_
from domain.maci import MaciRole
from domain.tenancy import SYSTEM_TENANT_ID
from domain.tenant.aggregate import Tenant
from tests.peers.http import HASH, Api, free_port, wait_for

# Examples per operation and principal: bounded in `make test`, more with `make fuzz`.
MAX_EXAMPLES = int(os.environ.get("ACGS_FUZZ_EXAMPLES", "25"))
STATEFUL_EXAMPLES = int(os.environ.get("ACGS_FUZZ_STATEFUL_EXAMPLES", "15"))
GENEROUS_QUOTA = 1_000_000


@dataclass
class Principal:
    name: str
    token: str
    tenant_id: UUID

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


@dataclass
class World:
    url: str
    api: Api
    principals: dict[str, Principal]
    own_tenant: dict[str, str]  # the tenant of the tenant admin and the low role
    other_tenant: dict[str, str]  # another tenant, never to be seen by them
    secrets: list[str] = field(default_factory=list)  # tokens, never to be echoed

    def other_tenant_marks(self) -> list[str]:
        t = self.other_tenant
        return [t["tenant_id"], t["tenant_slug"], t["tenant_name"], t["admin_email"]]


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


SYSTEM_FIELDS = (
    "tenant_name",
    "admin_email",
    "billing_plan",
    "max_requests_per_minute",
    "max_storage_gb",
    "max_concurrent_connections",
)


def as_operator() -> CommandContext:
    """A platform EXECUTIVE acting through the commands, as the CLI does (no HTTP, no quotas)."""
    operator = Principal_(
        sub="pytest-fuzz", tenant_id=SYSTEM_TENANT_ID, roles=(MaciRole.EXECUTIVE,)
    )
    return CommandContext(operator, HASH)


def restore_the_platform(api: Api, fields: dict[str, object]) -> None:
    """Put the system tenant back as it was: the platform fuzzer may change its profile and
    quotas (it is a tenant like any other), which the suites after this one must not see."""
    tenants = api.system.tenants
    tenant = api.system.app.load(SYSTEM_TENANT_ID, SYSTEM_TENANT_ID, Tenant)
    if tenant.status.value != "active":
        tenant = tenants.reactivate(as_operator(), SYSTEM_TENANT_ID)
    current = {
        **tenant.quotas.as_dict(),
        "tenant_name": tenant.tenant_name,
        "admin_email": tenant.admin_email,
        "billing_plan": tenant.billing_plan,
    }
    changes = {k: v for k, v in fields.items() if current.get(k) != v}
    if changes:
        tenant = tenants.update(as_operator(), SYSTEM_TENANT_ID, changes).tenant
    api.services.directory.remember(tenant)


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
