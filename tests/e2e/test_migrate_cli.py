"""`acgs migrate start|status|results|cancel` as a real process on the session's database:
start an upload and wait for it (the job runs in the CLI's process), read it back, write its PDF,
and be refused cancelling a finished job."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from pypdf import PdfReader

from tests.e2e.migration_support import corpus_files, zipped
from tests.peers.http import Api

pytestmark = [pytest.mark.e2e, pytest.mark.postgres]

ACGS = [sys.executable, "-c", "from api.cli.main import cli; cli()"]


def _acgs(pg_admin_url: str, data_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ACGS_")}
    env.update(
        ACGS_DATABASE_URL=pg_admin_url,
        ACGS_DATA_DIR=str(data_dir),
        ACGS_LOG_LEVEL="WARNING",
        ACGS_MIGRATION_CONVERSION_PROCESSES="1",
    )
    return subprocess.run(
        [*ACGS, "migrate", *args], env=env, capture_output=True, text=True, timeout=180, check=False
    )


def test_start_wait_status_results_and_cancel_from_the_console(
    api: Api, platform: httpx.Client, unique: str, pg_admin_url: str, tmp_path: Path
) -> None:
    slug = f"cli-mig-{unique}"
    api.create_tenant(platform, slug)
    archive = tmp_path / "legacy.zip"
    archive.write_bytes(zipped(corpus_files(4, broken=True)))
    data = tmp_path / "data"

    started = _acgs(pg_admin_url, data, "start", "--tenant", slug, "--file", str(archive), "--wait")

    assert started.returncode == 0, started.stderr
    first, _, rest = started.stdout.partition("\n")
    job_id = first.split()[1]
    assert first == f"job {job_id} pending"
    outcome = json.loads(rest)
    assert outcome["job_status"] == "completed"
    assert (outcome["total_items"], outcome["successful_items"], outcome["failed_items"]) == (
        6,
        4,
        2,
    )
    assert outcome["progress_percentage"] == 100

    status = _acgs(pg_admin_url, data, "status", "--tenant", slug, job_id)
    assert json.loads(status.stdout)["job_status"] == "completed", status.stderr

    pdf = tmp_path / "report.pdf"
    results = _acgs(pg_admin_url, data, "results", "--tenant", slug, "--pdf", str(pdf), job_id)
    assert results.returncode == 0, results.stderr
    body = json.loads(results.stdout)
    assert body["result_summary"]["converted_policies"] == 4
    assert len(body["failed_items_details"]) == 2
    text = "\n".join(page.extract_text() for page in PdfReader(pdf).pages)
    assert "converted policies: 4" in text

    refused = _acgs(pg_admin_url, data, "cancel", "--tenant", slug, job_id)
    assert refused.returncode == 1
    assert "INVALID_STATE_TRANSITION" in refused.stderr
