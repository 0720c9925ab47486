"""A migration job whose worker (`acgs worker --only migration_jobs`, a real process) is killed
with SIGKILL mid-job, after it has written versions beyond its last checkpoint: once its lease
expires another worker re-claims the job, resumes from that checkpoint, and every count comes out
exact, with one registry version per policy.

The moment of the kill is made certain, not sampled: a first run (in this process) is stopped
once it has recorded a checkpoint past 60 policies; the killed worker then resumes from it and
records no checkpoint of its own until the job is done (`ACGS_MIGRATION_PROGRESS_SECONDS`), so
from its first batch until its last every version it writes lies beyond the checkpoint."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from uuid import UUID

import httpx
import psycopg
import pytest

from commands.migration_sources import JobSources
from domain.maci import MaciRole
from domain.migration.job import JobStatus
from tests.e2e.migration_support import corpus_files, job, runner, written
from tests.peers.http import HASH, Api

pytestmark = [pytest.mark.faults, pytest.mark.e2e, pytest.mark.postgres]

ACGS = [sys.executable, "-c", "from api.cli.main import cli; cli()"]
POLICIES = 400
LEASE_SECONDS = 5  # long enough that the check below runs within it on a busy machine


def _worker_env(pg_admin_url: str, data_dir: Path, allowed: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ACGS_")}
    env.update(
        ACGS_DATABASE_URL=pg_admin_url,
        ACGS_DATA_DIR=str(data_dir),
        ACGS_LOG_LEVEL="WARNING",
        ACGS_MIGRATION_SOURCE_DIRS=str(allowed),
        ACGS_MIGRATION_LEASE_SECONDS=str(LEASE_SECONDS),
        ACGS_MIGRATION_CONVERSION_PROCESSES="1",
        ACGS_MIGRATION_PROGRESS_SECONDS="86400",
    )
    return env


def _deadline(check: object, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():  # type: ignore[operator]
        if time.monotonic() > deadline:
            pytest.fail(f"{what}: not within {timeout} s")
        time.sleep(0.05)


def _versions_written(pg_admin_url: str, tenant: UUID) -> int:
    """Policy versions recorded in the event store for the tenant (read models may lag)."""
    with psycopg.connect(pg_admin_url, autocommit=True) as conn:
        row = conn.execute(
            "SELECT count(*) FROM governance_events WHERE tenant_id = %s AND topic LIKE %s",
            [tenant, "%TenantPolicy.VersionAdded"],
        ).fetchone()
    return int(row[0]) if row else 0


def test_a_worker_killed_mid_job_is_resumed_with_exact_counts(
    api: Api,
    platform: httpx.Client,
    unique: str,
    pg_admin_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    allowed = tmp_path / "allowed"
    source = written(allowed / "legacy", corpus_files(POLICIES))
    jobs = api.system.migrations
    assert jobs is not None
    monkeypatch.setattr(jobs, "sources", JobSources(tmp_path / "up", [allowed], 1 << 20, 1 << 24))
    tenant = UUID(api.create_tenant(platform, f"kill-{unique}")["tenant_id"])
    with api.client(api.token(MaciRole.LEGISLATIVE, tenant_id=tenant)) as client:
        response = client.post(
            f"/v1/tenants/{tenant}/migrations",
            json={
                "job_type": "policy_conversion",
                "source_system": "LegacyGovernanceV1",
                "source_config": {"policy_file_path": str(source), "batch_size": 20},
                "constitutional_hash": HASH,
            },
        )
    assert response.status_code == 202, response.text
    job_id = UUID(response.json()["job_id"])
    api.wait_projected()

    # The first run: stopped between two batches once 60 policies are in; it records its
    # checkpoint as it stops, and its lease is left to expire.
    stop = threading.Event()
    first = threading.Thread(
        target=runner(api.system, lease_seconds=LEASE_SECONDS).run_job,
        args=(tenant, job_id, stop),
    )
    first.start()
    try:
        _deadline(
            lambda: _versions_written(pg_admin_url, tenant) >= 60 or not first.is_alive(),
            90,
            "the first 60 versions",
        )
    finally:
        stop.set()
        first.join(60)
    checkpoint = job(api.system, tenant, job_id).processed
    assert 60 <= checkpoint < POLICIES
    assert _versions_written(pg_admin_url, tenant) == checkpoint

    log = tmp_path / "worker.log"
    with log.open("wb") as output:
        worker = subprocess.Popen(
            [*ACGS, "worker", "--only", "migration_jobs"],
            env=_worker_env(pg_admin_url, tmp_path / "worker-data", allowed),
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    try:
        # Paused (SIGSTOP) while it is checked, so the job cannot end between check and kill.
        def paused_beyond_checkpoint() -> bool:
            assert worker.poll() is None, log.read_text()
            os.kill(worker.pid, signal.SIGSTOP)
            time.sleep(0.1)  # what it had sent before the pause is committed meanwhile
            if _versions_written(pg_admin_url, tenant) > checkpoint:
                return True
            os.kill(worker.pid, signal.SIGCONT)
            return False

        _deadline(paused_beyond_checkpoint, 90, "versions beyond the checkpoint")
        worker.kill()  # SIGKILL (while paused): no chance to record anything more
        worker.wait(30)
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait()
    killed = job(api.system, tenant, job_id)
    assert killed.status is JobStatus.RUNNING
    assert killed.claims == 2
    assert killed.processed == checkpoint < _versions_written(pg_admin_url, tenant) < POLICIES

    resumed = runner(api.system, lease_seconds=LEASE_SECONDS)
    assert resumed.claim(tenant, job_id) is None  # the dead worker's lease still holds
    api.wait_projected()
    _deadline(
        lambda: resumed.run_job(tenant, job_id, threading.Event()),  # this job, not another's
        LEASE_SECONDS + 30,
        "re-claim after the lease expired",
    )
    api.wait_projected()

    done = job(api.system, tenant, job_id)
    assert done.status is JobStatus.COMPLETED
    assert done.claims == 3
    assert (done.total, done.processed, done.successful, done.failed) == (POLICIES,) * 3 + (0,)
    summary = done.result_summary or {}
    assert summary["converted_policies"] == POLICIES
    assert summary["policies"] == POLICIES
    with psycopg.connect(pg_admin_url, autocommit=True) as conn:
        versions = conn.execute(
            "SELECT count(*), count(DISTINCT policy_id), max(version) FROM policy_versions "
            "WHERE tenant_id = %s",
            [tenant],
        ).fetchone()
    assert versions == (POLICIES, POLICIES, 1)
