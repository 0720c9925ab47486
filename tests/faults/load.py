"""Write load for the fault cases: clients creating tenants through the HTTP API."""

from __future__ import annotations

import contextlib
import threading
import time
import uuid
from collections.abc import Iterator
from uuid import UUID

import httpx
import psycopg

from domain.tenancy import SYSTEM_TENANT_ID
from tests.faults.conftest import ANSWER_BOUND_SECONDS
from tests.peers.http import HASH


class TenantLoad:
    """`clients` threads creating tenants through the API until stopped; every answer kept
    (201s with the time they arrived, 503s, anything else)."""

    def __init__(self, url: str, token: str, clients: int = 4) -> None:
        self.url, self.token = url, token
        self.stopping = threading.Event()
        self.created: list[tuple[float, UUID]] = []
        self.refused: list[tuple[float, httpx.Response]] = []
        self.other: list[tuple[float, str]] = []
        self.slowest = 0.0
        self._paused = threading.Event()
        self._in_flight = 0
        self._lock = threading.Lock()
        self._threads = [threading.Thread(target=self._run, args=(n,)) for n in range(clients)]

    def __enter__(self) -> TenantLoad:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stopping.set()
        for thread in self._threads:
            thread.join(timeout=60)

    def _run(self, n: int) -> None:
        headers = {"Authorization": f"Bearer {self.token}", "X-Constitutional-Hash": HASH}
        with httpx.Client(
            base_url=self.url, headers=headers, timeout=ANSWER_BOUND_SECONDS
        ) as client:
            while not self.stopping.is_set():
                if self._paused.is_set():
                    time.sleep(0.02)
                    continue
                slug = f"fault-{n}-{uuid.uuid4().hex[:12]}"
                began = time.monotonic()
                try:
                    with self._counted():
                        if self._paused.is_set():
                            continue
                        response = client.post(
                            "/v1/tenants",
                            json={
                                "tenant_name": f"Fault {slug}",
                                "tenant_slug": slug,
                                "admin_email": "ops@fault.example.com",
                            },
                        )
                except httpx.HTTPError as exc:
                    self.other.append((began, f"{type(exc).__name__}: {exc}"))
                    continue
                took = time.monotonic() - began
                self.slowest = max(self.slowest, took)
                if response.status_code == 201:
                    self.created.append((time.monotonic(), UUID(response.json()["tenant_id"])))
                elif response.status_code == 503:
                    self.refused.append((began, response))
                    time.sleep(0.05)  # a client backing off, not a busy loop
                else:
                    self.other.append((began, f"{response.status_code} {response.text}"))

    @contextlib.contextmanager
    def _counted(self) -> Iterator[None]:
        with self._lock:
            self._in_flight += 1
        try:
            yield
        finally:
            with self._lock:
                self._in_flight -= 1

    def pause(self) -> None:
        """No new request; returns once none is in flight."""
        self._paused.set()
        while self._in_flight:
            time.sleep(0.01)

    def resume(self) -> None:
        self._paused.clear()

    def created_since(self, moment: float) -> int:
        return sum(1 for at, _ in self.created if at > moment)

    def first_created_since(self, moment: float) -> float:
        """Seconds from `moment` to the first 201 after it."""
        return min(at for at, _ in self.created if at > moment) - moment


def lift_platform_rate_limit(database_url: str) -> None:
    """Raise the platform tenant's requests per minute (a row the migrations seed, 1000 by
    default) far above what the load sends: tenants are created with the platform token, and a
    fast machine reaches 1000 within the minute a case runs. Before the first request, while the
    service has not cached the row."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(
            "UPDATE tenants SET max_requests_per_minute = 1000000 WHERE tenant_id = %s",
            (SYSTEM_TENANT_ID,),
        )
