"""`acgs worker` runs the same supervised workers as `acgs serve`, audit-partition maintenance
included, and stops on SIGTERM."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import psycopg
import pytest

from api.settings import Settings

pytestmark = [pytest.mark.e2e, pytest.mark.postgres]

ACGS = [sys.executable, "-c", "from api.cli.main import cli; cli()"]


def _env(settings: Settings, data_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ACGS_")}
    env.update(
        ACGS_DATABASE_URL=str(settings.database_url),
        ACGS_DATA_DIR=str(data_dir),
        ACGS_LOG_LEVEL="WARNING",
    )
    return env


def _months_ahead(months: int) -> str:
    today = datetime.now(UTC).date()
    index = today.year * 12 + today.month - 1 + months
    return f"{index // 12}m{index % 12 + 1:02d}"


def test_worker_runs_partition_maintenance_and_stops_on_sigterm(
    settings: Settings, pg_admin_url: str, tmp_path: Path
) -> None:
    # The partition three months ahead is dropped (empty: no audit row is that far ahead), so
    # only the worker's maintenance can bring it back.
    ahead = "tenant_audit_log_y" + _months_ahead(3)
    with psycopg.connect(pg_admin_url, autocommit=True) as conn:
        conn.execute(f"DROP TABLE IF EXISTS {ahead}")
    proc = subprocess.Popen(
        [*ACGS, "worker", "--only", "audit_partitions"],
        env=_env(settings, tmp_path),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.strip() == "acgs worker: running audit_partitions  (Ctrl-C stops)"
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err
    assert out.strip().endswith("acgs worker: stopped")
    with psycopg.connect(pg_admin_url, autocommit=True) as conn:
        found = conn.execute("SELECT to_regclass(%s)", [ahead]).fetchone()
    assert found == (ahead,)


def test_worker_refuses_an_unknown_name(settings: Settings, tmp_path: Path) -> None:
    done = subprocess.run(
        [*ACGS, "worker", "--only", "nope"],
        env=_env(settings, tmp_path),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    assert "unknown worker(s): nope" in done.stderr
    assert "audit_partitions" in done.stderr
