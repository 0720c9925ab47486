"""`acgs migrate start|status|results|cancel` as a real process on the session's database:
start an upload and wait for it (the job runs in the CLI's process), read it back, write its PDF,
and be refused cancelling a finished job; the same for a decision_log_import, and a pending job
cancelled."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from pypdf import PdfReader

from tests.e2e.journey_corpus import DECISIONS, decision_log_csv
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


def test_a_decision_log_import_from_the_console(
    api: Api, platform: httpx.Client, unique: str, pg_admin_url: str, tmp_path: Path
) -> None:
    slug = f"cli-imp-{unique}"
    api.create_tenant(platform, slug)
    log = tmp_path / "decisions.csv"
    log.write_text(decision_log_csv(), encoding="utf-8")
    data = tmp_path / "data"
    config = json.dumps({"batch_size": 500})

    started = _acgs(
        pg_admin_url, data, "start", "--tenant", slug, "--type", "decision_log_import",
        "--file", str(log), "--config", config, "--wait",
    )  # fmt: skip

    assert started.returncode == 0, started.stderr
    first, _, rest = started.stdout.partition("\n")
    job_id = first.split()[1]
    outcome = json.loads(rest)
    assert (outcome["job_type"], outcome["job_status"]) == ("decision_log_import", "completed")
    rows = DECISIONS + 9
    assert (outcome["total_items"], outcome["successful_items"], outcome["failed_items"]) == (
        rows,
        rows - 5,
        5,
    )
    status = _acgs(pg_admin_url, data, "status", "--tenant", slug, job_id)
    assert json.loads(status.stdout)["processed_items"] == rows, status.stderr
    pdf = tmp_path / "import.pdf"
    results = _acgs(pg_admin_url, data, "results", "--tenant", slug, "--pdf", str(pdf), job_id)
    assert results.returncode == 0, results.stderr
    summary = json.loads(results.stdout)["result_summary"]
    assert (summary["imported"], summary["skipped_duplicates"]) == (DECISIONS, 4)
    assert (summary["conflicts"], summary["invalid_rows"]) == (2, 3)
    text = "\n".join(page.extract_text() for page in PdfReader(pdf).pages)
    assert "Failed items (5)" in text

    pending = _acgs(
        pg_admin_url, data, "start", "--tenant", slug, "--type", "decision_log_import",
        "--file", str(log),
    )  # fmt: skip
    assert pending.returncode == 0, pending.stderr
    other = pending.stdout.split()[1]
    cancelled = _acgs(pg_admin_url, data, "cancel", "--tenant", slug, other)
    assert cancelled.returncode == 0, cancelled.stderr
    assert cancelled.stdout.strip() == f"job {other} cancelled after 0 items"
