"""`acgs serve --workers 2` as a user runs it on a fresh data directory (the embedded profile):
one port, two serving processes, one database; a serving process that dies is replaced while
the other answers; SIGTERM stops the copies, then the embedded PostgreSQL, and exits 0."""

from __future__ import annotations

import os
import re
import signal
import time
import uuid

import httpx
import pytest

from domain.constitution import DEFAULT_CONSTITUTIONAL_HASH
from tests.peers.scratch import scratch_dir
from tests.peers.serve import ServeProcess, alive, processes_mentioning

pytestmark = [pytest.mark.e2e, pytest.mark.postgres, pytest.mark.slow]

LISTENING = re.compile(r"acgs: serving process (\d+) listening on")


def _serving_pids(served: ServeProcess, count: int) -> list[int]:
    """The PIDs of the first `count` serving processes that said they listen."""
    lines = served.wait_for_lines("listening on", count, timeout=120)
    return [int(m.group(1)) for line in lines if (m := LISTENING.search(line))]


def test_two_serving_processes_share_the_port_and_the_database() -> None:
    with scratch_dir("acgs-workers-") as data_dir:
        served = ServeProcess(data_dir, args=("--workers", "2")).start()
        assert served.process is not None
        postmaster = None
        try:
            served.wait_for_line("acgs: 2 serving processes")
            first, second = _serving_pids(served, 2)
            assert first != second
            assert alive(first)
            assert alive(second)
            postmaster = served.postmaster_pid()
            token = served.bootstrap_token()
            headers = {"Authorization": f"Bearer {token}"}
            slug = f"workers-{uuid.uuid4().hex[:8]}"
            with httpx.Client(base_url=served.url, headers=headers, timeout=30) as client:
                created = client.post(
                    "/v1/tenants",
                    json={
                        "tenant_name": "Workers Inc",
                        "tenant_slug": slug,
                        "admin_email": "admin@workers.example.com",
                        "constitutional_hash": DEFAULT_CONSTITUTIONAL_HASH,
                    },
                )
                assert created.status_code == 201, created.text
                tenant_id = created.json()["tenant_id"]

            # New connections land on either process; every one of them knows the tenant.
            deadline = time.monotonic() + 30
            answers: list[int] = []
            while time.monotonic() < deadline:
                answers = [
                    httpx.get(
                        f"{served.url}/v1/tenants/{tenant_id}", headers=headers, timeout=30
                    ).status_code
                    for _ in range(20)
                ]
                if set(answers) == {200}:
                    break
                time.sleep(0.2)
            assert set(answers) == {200}, answers

            # One serving process dies: the other answers meanwhile, and a new one takes its place.
            os.kill(first, signal.SIGKILL)
            for _ in range(20):
                assert httpx.get(f"{served.url}/healthz", timeout=30).status_code == 200
            served.wait_for_line(f"serving process {first} ended")
            (third,) = _serving_pids(served, 3)[2:]
            assert third not in (first, second)
            assert alive(third)
            assert alive(second)

            code = served.stop(signal.SIGTERM, timeout=90)
            assert code == 0, served.lines
            assert served.lines[-1] == "acgs: stopped"
            assert not alive(second)
            assert not alive(third)
            assert not alive(postmaster), "the embedded PostgreSQL is still running"
            assert processes_mentioning(str(data_dir)) == []
        finally:
            if served.process.poll() is None:
                served.stop(signal.SIGKILL)
            for pid in processes_mentioning(str(data_dir)):
                os.kill(pid, signal.SIGKILL)
            if postmaster is not None and alive(postmaster):
                os.kill(postmaster, signal.SIGTERM)
