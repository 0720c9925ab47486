"""The HTTP API served for real: uvicorn on a free 127.0.0.1 port in a background thread, over
a system of its own (its own data directory and signing keys) on the session's PostgreSQL.

Its projection runners are not left running in the background (other suites on this database
drive projections themselves and assert on lag): tests bring the read models up to date with
`Api.wait_projected()`, which runs the runners to the head of the log. `acgs serve` with its
runners in-process is covered by tests/e2e/test_serve_and_cli.py."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from uuid import UUID

import anyio.to_thread
import httpx
import pytest
import uvicorn
from litestar import get

from api.bootstrap import System, build
from api.http.app import create_app
from api.http.quotas.memory import SlidingWindowRateLimiter
from api.http.services import ApiServices
from api.settings import Settings
from api.tokens import issue_as_operator
from domain.constitution import DEFAULT_CONSTITUTIONAL_HASH
from domain.maci import MaciRole
from domain.tenancy import SYSTEM_TENANT_ID

HASH = DEFAULT_CONSTITUTIONAL_HASH


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for(check: Callable[[], Any], *, timeout: float = 10.0, interval: float = 0.02) -> Any:
    """Poll `check` until it returns a truthy value; fail with the last value at the deadline."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"condition not met within {timeout} s (last value {value!r})")
        time.sleep(interval)


class ManualClock:
    """A clock the test moves by hand (epoch seconds), for the parts that take a clock."""

    def __init__(self, now: float = 1_700_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@dataclass
class Api:
    """The running server, its services, and helpers that act like an operator."""

    url: str
    system: System
    services: ApiServices

    def token(
        self,
        *roles: MaciRole,
        tenant_id: UUID = SYSTEM_TENANT_ID,
        sub: str = "tester",
        ttl: int = 900,
    ) -> str:
        issued = issue_as_operator(
            self.system,
            "pytest",
            tenant_id=tenant_id,
            roles=roles or (MaciRole.EXECUTIVE,),
            sub=sub,
            ttl_seconds=ttl,
        )
        return issued.token

    def client(self, token: str | None = None) -> httpx.Client:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=30)

    def create_tenant(self, client: httpx.Client, slug: str, **fields: Any) -> dict[str, Any]:
        """Create through the API and wait until the read model has it."""
        body = {
            "tenant_name": f"Tenant {slug}",
            "tenant_slug": slug,
            "admin_email": f"admin@{slug}.example.com",
            "constitutional_hash": HASH,
            **fields,
        }
        response = client.post("/v1/tenants", json=body)
        assert response.status_code == 201, response.text
        created: dict[str, Any] = response.json()
        self.wait_projected()
        return created

    def wait_projected(self) -> None:
        """Bring every read model up to date with everything recorded so far."""
        for runner in self.system.runners:
            runner.catch_up()

    def head(self) -> int:
        return max(int(r["head"]) for r in self.system.projection_status())


@pytest.fixture(scope="session")
def api_system(pg_admin_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[System]:
    data_dir = Path(tmp_path_factory.mktemp("api-data"))
    settings = Settings.from_env(
        {"ACGS_DATABASE_URL": pg_admin_url, "ACGS_DATA_DIR": str(data_dir)}
    )
    system = build(settings, apply_migrations=True)
    yield system
    system.close()


# Test-only routes, served under /v1 (so behind the edge) by the session's server only.
HOLD = threading.Event()
LEAKY_FAILURE = "SELECT password FROM secrets WHERE token = 'eyJhbGciOi.abc.def'"


@get("/v1/_test/fail", sync_to_thread=False, include_in_schema=False)
def fail() -> None:
    raise RuntimeError(LEAKY_FAILURE)


@get("/v1/_test/hold", include_in_schema=False)
async def hold() -> dict[str, bool]:
    """Stays in flight until the test sets HOLD (or 10 s pass)."""
    released = await anyio.to_thread.run_sync(HOLD.wait, 10)
    return {"released": released}


@contextmanager
def serving(app: Any) -> Iterator[str]:
    """Serve `app` with uvicorn on a free 127.0.0.1 port in a background thread; yields its URL."""
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(
            app,
            host="127.0.0.1",
            port=port,
            log_level="warning",
            access_log=False,
            lifespan="on",
            ws="none",
        )
    )
    thread = threading.Thread(target=server.run, name="api-server", daemon=True)
    thread.start()
    wait_for(lambda: server.started or not thread.is_alive(), timeout=30)
    if not server.started:
        pytest.fail("the API server did not start")
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@pytest.fixture(scope="session")
def api(api_system: System) -> Iterator[Api]:
    app = create_app(api_system, extra_route_handlers=[fail, hold])
    with serving(app) as url:
        yield Api(url, api_system, app.state["api"])


@pytest.fixture
def limiter_clock(api: Api, monkeypatch: pytest.MonkeyPatch) -> ManualClock:
    """The server's rate limiter (and so the usage it reports) on a clock the test moves: a
    window passes without waiting for it."""
    clock = ManualClock()
    monkeypatch.setattr(api.services, "rate_limiter", SlidingWindowRateLimiter(clock=clock))
    return clock


@pytest.fixture
def platform(api: Api) -> Iterator[httpx.Client]:
    """A client holding a platform EXECUTIVE token."""
    with api.client(api.token(MaciRole.EXECUTIVE)) as client:
        yield client
