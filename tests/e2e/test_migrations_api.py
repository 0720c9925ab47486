"""Migration jobs over real HTTP on the real database and regorus: the 1,000-policy conversion
end to end (upload, job, registry, report, audit), validation, cancellation and its 409s, the
PDF report's text, server-side paths, and two workers claiming one job."""

from __future__ import annotations

import dataclasses
import io
import json
import multiprocessing
import shutil
import threading
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from uuid import UUID

import httpx
import psycopg
import pytest
from pypdf import PdfReader

from commands.migration_sources import JobSources
from domain.maci import MaciRole
from domain.migration.job import JobStatus
from infra.postgres.job_queue import PostgresJobQueue
from tests.e2e.migration_support import (
    WRITE,
    corpus_files,
    job,
    runner,
    upload,
    written,
    zipped,
)
from tests.peers.http import HASH, Api

pytestmark = [pytest.mark.e2e, pytest.mark.postgres]


def _error(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"code", "message", "details", "constitutional_hash"}
    assert body["error"]["code"] == code, body
    assert body["error"]["constitutional_hash"] == HASH
    return dict(body["error"])


class Tenant:
    def __init__(self, api: Api, platform: httpx.Client, slug: str) -> None:
        self.id = UUID(api.create_tenant(platform, slug)["tenant_id"])
        self._api = api
        self._clients: list[httpx.Client] = []

    def client(self, role: MaciRole = MaciRole.LEGISLATIVE) -> httpx.Client:
        client = self._api.client(self._api.token(role, tenant_id=self.id, sub=f"{role}-user"))
        self._clients.append(client)
        return client

    def close(self) -> None:
        for client in self._clients:
            client.close()


@pytest.fixture
def tenant(api: Api, platform: httpx.Client, unique: str) -> Iterator[Tenant]:
    made = Tenant(api, platform, f"mig-{unique}")
    yield made
    made.close()


def _accepted(response: httpx.Response, tenant: Tenant) -> str:
    assert response.status_code == 202, response.text
    body = response.json()
    assert body["job_status"] == "pending"
    assert body["tenant_id"] == str(tenant.id)
    assert body["status_url"] == f"/v1/tenants/{tenant.id}/migrations/{body['job_id']}"
    assert body["constitutional_hash"] == HASH
    return str(body["job_id"])


def _run_all(api: Api, **settings: Any) -> None:
    """Project, then run every claimable job to its end."""
    api.wait_projected()
    worker = runner(api.system, **settings)
    while worker.run_once():
        api.wait_projected()
    api.wait_projected()


@pytest.mark.processes  # two conversion processes, for 1,000 policies
def test_a_thousand_legacy_policies_migrate_end_to_end_over_http(
    api: Api, tenant: Tenant, pg_admin_url: str
) -> None:
    client = tenant.client()
    archive = zipped(corpus_files(1000, broken=True))

    job_id = _accepted(upload(client, tenant.id, archive), tenant)
    api.wait_projected()
    pending = client.get(f"/v1/tenants/{tenant.id}/migrations/{job_id}").json()
    assert (pending["job_status"], pending["progress_percentage"]) == ("pending", 0)
    _run_all(api, processes=2)

    status = client.get(f"/v1/tenants/{tenant.id}/migrations/{job_id}")
    assert status.status_code == 200, status.text
    done = status.json()
    assert done["job_status"] == "completed"
    assert (done["total_items"], done["processed_items"]) == (1002, 1002)
    assert (done["successful_items"], done["failed_items"]) == (1000, 2)
    assert done["progress_percentage"] == 100
    assert done["started_at"] <= done["estimated_completion"] == done["completed_at"]
    results = client.get(f"/v1/tenants/{tenant.id}/migrations/{job_id}/results").json()
    summary = results["result_summary"]
    assert summary["converted_policies"] == 1000
    assert summary["new_versions"] == 1000
    assert summary["constitutional_compliance_rate"] == round(1000 / 1002, 4)
    assert summary["conversion_coverage"]["failed"] == 2
    assert results["download_url"].endswith(f"/migrations/{job_id}/report.pdf")
    failed = {item["item_id"]: item for item in results["failed_items_details"]}
    assert len(failed) == 2
    assert all(item["error"] and item["recommendation"] for item in failed.values())
    assert any("broken-syntax" in key for key in failed)
    # Every converted policy is in the registry: a new version, not active.
    policies = client.get(f"/v1/tenants/{tenant.id}/policies", params={"limit": 1}).json()
    assert policies["total"] == 1000
    one = client.get(f"/v1/tenants/{tenant.id}/policies/bench-00003").json()
    assert (one["status"], one["active_version"], one["latest_version"]) == ("draft", None, 1)
    version = client.get(f"/v1/tenants/{tenant.id}/policies/bench-00003/versions/1").json()
    assert version["conversion_status"] == "converted"
    assert version["report"]["migration_job_id"] == job_id
    with psycopg.connect(pg_admin_url, autocommit=True) as conn:
        audited = conn.execute(
            "SELECT event_category, count(*) FROM tenant_audit_log WHERE tenant_id = %s "
            "AND event_type IN ('migration_job.created', 'migration_job.completed') "
            "GROUP BY event_category",
            [tenant.id],
        ).fetchall()
    assert audited == [("migration", 2)]


def test_activate_writes_active_versions_and_a_rerun_adds_no_second_version(
    api: Api, tenant: Tenant
) -> None:
    client = tenant.client()
    archive = zipped(corpus_files(6))
    config = json.dumps({"activate": True, "batch_size": 4})
    first = _accepted(upload(client, tenant.id, archive, source_config=config), tenant)
    _run_all(api)
    second = _accepted(upload(client, tenant.id, archive, source_config=config), tenant)
    _run_all(api)

    one = client.get(f"/v1/tenants/{tenant.id}/policies/bench-00000").json()
    assert (one["status"], one["active_version"], one["latest_version"]) == ("active", 1, 1)
    again = client.get(f"/v1/tenants/{tenant.id}/migrations/{second}/results").json()
    assert again["result_summary"]["new_versions"] == 0
    assert again["result_summary"]["unchanged_versions"] == 6
    assert again["result_summary"]["converted_policies"] == 6
    firsts = client.get(f"/v1/tenants/{tenant.id}/migrations/{first}/results").json()
    assert firsts["result_summary"]["activated"] == 6


def test_the_pdf_report_holds_the_summary_failed_items_and_charts(api: Api, tenant: Tenant) -> None:
    client = tenant.client()
    job_id = _accepted(upload(client, tenant.id, zipped(corpus_files(5, broken=True))), tenant)
    _run_all(api)

    response = client.get(f"/v1/tenants/{tenant.id}/migrations/{job_id}/report.pdf")

    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/pdf"
    reader = PdfReader(io.BytesIO(response.content))
    text = "\n".join(page.extract_text() for page in reader.pages)
    assert "Migration job report: policy_conversion" in text
    assert job_id in text
    assert "converted policies: 5" in text
    assert "constitutional compliance rate: 71.43%" in text
    assert "Conversion coverage" in text
    assert "Failed items (2)" in text
    assert "broken-syntax" in text
    assert "Recommendation:" in text
    images = sum(len(page.images) for page in reader.pages)
    assert images == 1  # the coverage chart; no agreement or gap data in a conversion


def test_bad_requests_list_every_field_and_unknown_kinds_name_the_known(
    api: Api, tenant: Tenant
) -> None:
    client = tenant.client()
    response = client.post(
        f"/v1/tenants/{tenant.id}/migrations",
        json={
            "job_type": "teleport",
            "source_system": "Legacy",
            "source_config": {"policy_file_path": "/etc/passwd"},
            "constitutional_hash": HASH,
        },
    )
    error = _error(response, 422, "VALIDATION_ERROR")
    fields = {f["field"]: f for f in error["details"]["fields"]}
    assert set(fields) == {"job_type", "source_config.policy_file_path"}
    assert "policy_conversion" in fields["job_type"]["known"]
    bad = upload(
        client,
        tenant.id,
        zipped(corpus_files(1)),
        source_config=json.dumps({"format": "xml", "validation_mode": "loose", "activate": 1}),
    )
    error = _error(bad, 422, "VALIDATION_ERROR")
    assert {f["field"] for f in error["details"]["fields"]} == {
        "source_config.format",
        "source_config.validation_mode",
        "source_config.activate",
    }
    malformed = client.post(
        f"/v1/tenants/{tenant.id}/migrations/upload",
        content=b'--xyz\r\nContent-Disposition: form-data; name="file"; filename="a.zip"\r\n',
        headers={"content-type": "multipart/form-data; boundary=xyz"},
    )
    error = _error(malformed, 422, "VALIDATION_ERROR")
    assert error["details"]["fields"] == [
        {"field": "body", "message": "is not a valid multipart/form-data body"}
    ]
    api.wait_projected()
    listed = client.get(f"/v1/tenants/{tenant.id}/migrations").json()
    assert listed["total"] == 0  # nothing was recorded


def test_an_archive_member_leaving_its_directory_is_refused(api: Api, tenant: Tenant) -> None:
    import zipfile  # noqa: PLC0415

    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("ok.json", "{}")
        archive.writestr("../../escape.json", "{}")
    response = upload(tenant.client(), tenant.id, out.getvalue())
    error = _error(response, 422, "VALIDATION_ERROR")
    assert error["details"]["fields"][0]["field"] == "file"
    assert "../../escape.json" in error["details"]["fields"][0]["message"]
    uploads = api.system.settings.data_dir / "migrations" / "uploads"
    assert not list(uploads.rglob("escape.json"))


def test_a_server_side_path_inside_an_allowed_directory_is_converted(
    api: Api, tenant: Tenant, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    allowed = written(tmp_path / "allowed" / "legacy", corpus_files(3))
    jobs = api.system.migrations
    assert jobs is not None
    monkeypatch.setattr(
        jobs, "sources", JobSources(tmp_path / "uploads", [tmp_path / "allowed"], 1 << 20, 1 << 24)
    )
    client = tenant.client(MaciRole.EXECUTIVE)
    outside = client.post(
        f"/v1/tenants/{tenant.id}/migrations",
        json={
            "job_type": "policy_conversion",
            "source_system": "Legacy",
            "source_config": {"policy_file_path": str(allowed / ".." / ".." / "..")},
            "constitutional_hash": HASH,
        },
    )
    _error(outside, 422, "VALIDATION_ERROR")
    response = client.post(
        f"/v1/tenants/{tenant.id}/migrations",
        json={
            "job_type": "policy_conversion",
            "source_system": "Legacy",
            "source_config": {"policy_file_path": str(allowed), "format": "auto"},
            "constitutional_hash": HASH,
        },
    )
    job_id = _accepted(response, tenant)
    _run_all(api)
    done = client.get(f"/v1/tenants/{tenant.id}/migrations/{job_id}").json()
    assert (done["job_status"], done["successful_items"]) == ("completed", 3)


def test_cancel_a_pending_job_then_409_for_the_terminal_job(api: Api, tenant: Tenant) -> None:
    client = tenant.client()
    job_id = _accepted(upload(client, tenant.id, zipped(corpus_files(2))), tenant)
    url = f"/v1/tenants/{tenant.id}/migrations/{job_id}"

    cancelled = client.delete(url, headers=WRITE)

    assert cancelled.status_code == 200, cancelled.text
    body = cancelled.json()
    assert (body["job_status"], body["processed_items"]) == ("cancelled", 0)
    assert body["cancelled_at"]
    _error(client.delete(url, headers=WRITE), 409, "INVALID_STATE_TRANSITION")
    api.wait_projected()
    assert not runner(api.system).run_once()  # a cancelled job is never claimed
    assert client.get(url).json()["job_status"] == "cancelled"
    done = _accepted(upload(client, tenant.id, zipped(corpus_files(2))), tenant)
    _run_all(api)
    _error(
        client.delete(f"/v1/tenants/{tenant.id}/migrations/{done}", headers=WRITE),
        409,
        "INVALID_STATE_TRANSITION",
    )


@pytest.mark.parametrize("processes", [1, 2])
def test_a_running_job_cancelled_stops_between_batches(
    api: Api, tenant: Tenant, processes: int
) -> None:
    client = tenant.client()
    config = json.dumps({"batch_size": 10})
    job_id = _accepted(
        upload(client, tenant.id, zipped(corpus_files(600)), source_config=config), tenant
    )
    api.wait_projected()
    worker = runner(api.system, processes=processes)
    thread = threading.Thread(target=worker.run_once)
    thread.start()
    try:
        _wait(lambda: job(api.system, tenant.id, job_id).processed > 0, 60)
        response = client.delete(f"/v1/tenants/{tenant.id}/migrations/{job_id}", headers=WRITE)
        assert response.status_code == 200, response.text
    finally:
        thread.join(60)
    assert not thread.is_alive()
    stopped = job(api.system, tenant.id, job_id)
    assert stopped.status is JobStatus.CANCELLED
    assert 0 < stopped.processed < 600
    assert multiprocessing.active_children() == []  # the conversion processes are gone


def test_batches_converted_ahead_in_two_processes_are_counted_once(
    api: Api, tenant: Tenant
) -> None:
    """With two processes the next batch is converted while one is written: every batch is
    still counted once, in order, with its own unreadable and broken files."""
    client = tenant.client()
    files = corpus_files(40, broken=True)
    files["bench-00017x.json"] = '{"policy_id": "bench-00017x", "rules": ['  # in batch 3
    archive = io.BytesIO(zipped(files))
    with zipfile.ZipFile(archive, "a") as unreadable:
        unreadable.writestr("legacy/bench-00030x.json", b"\xff\xfe not UTF-8")  # in batch 5
    config = json.dumps({"batch_size": 7})
    job_id = _accepted(upload(client, tenant.id, archive.getvalue(), source_config=config), tenant)
    _run_all(api, processes=2)

    done = client.get(f"/v1/tenants/{tenant.id}/migrations/{job_id}").json()
    assert done["job_status"] == "completed"
    assert (done["total_items"], done["processed_items"]) == (44, 44)
    assert (done["successful_items"], done["failed_items"]) == (40, 4)
    results = client.get(f"/v1/tenants/{tenant.id}/migrations/{job_id}/results").json()
    summary = results["result_summary"]
    assert (summary["converted_policies"], summary["new_versions"]) == (40, 40)
    assert summary["conversion_coverage"] == {
        "converted": 40,
        "unproven": 0,
        "partial": 0,
        "failed": 3,
    }
    failed = sorted(item["item_id"] for item in results["failed_items_details"])
    assert len(failed) == 4
    for name in ("bench-00017x", "bench-00030x", "broken-rule", "broken-syntax"):
        assert sum(name in item for item in failed) == 1, (name, failed)
    listed = client.get(f"/v1/tenants/{tenant.id}/policies", params={"limit": 1}).json()
    assert listed["total"] == 40
    assert multiprocessing.active_children() == []


def test_a_monitor_reads_jobs_but_cannot_start_or_cancel_them(api: Api, tenant: Tenant) -> None:
    author = tenant.client()
    job_id = _accepted(upload(author, tenant.id, zipped(corpus_files(1))), tenant)
    monitor = tenant.client(MaciRole.MONITOR)
    _error(upload(monitor, tenant.id, zipped(corpus_files(1))), 403, "FORBIDDEN")
    url = f"/v1/tenants/{tenant.id}/migrations/{job_id}"
    _error(monitor.delete(url, headers=WRITE), 403, "FORBIDDEN")
    api.wait_projected()
    assert monitor.get(url).status_code == 200
    listed = monitor.get(f"/v1/tenants/{tenant.id}/migrations", params={"status": "pending"})
    assert [j["job_id"] for j in listed.json()["jobs"]] == [job_id]
    author.delete(url, headers=WRITE)


def test_two_workers_claiming_one_job_one_wins(api: Api, tenant: Tenant) -> None:
    client = tenant.client()
    job_id = UUID(_accepted(upload(client, tenant.id, zipped(corpus_files(1))), tenant))
    first, second = runner(api.system), runner(api.system)
    barrier = threading.Barrier(2)
    claimed: list[object] = []

    def claim(worker: Any) -> None:
        barrier.wait()
        claimed.append(worker.claim(tenant.id, job_id))

    threads = [threading.Thread(target=claim, args=(w,)) for w in (first, second)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)

    winners = [c for c in claimed if c is not None]
    assert len(claimed) == 2
    assert len(winners) == 1
    held = job(api.system, tenant.id, job_id)
    assert held.claims == 1
    assert held.lease_owner in (first.owner, second.owner)
    # No worker runs it: cancelled, so no later test's runner re-claims it once the lease expires.
    cancelled = client.delete(f"/v1/tenants/{tenant.id}/migrations/{job_id}", headers=WRITE)
    assert cancelled.status_code == 200, cancelled.text


def _wait(check: Any, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            pytest.fail(f"not within {timeout} s")
        time.sleep(0.02)


def test_a_tenant_at_its_cap_of_running_jobs_waits(api: Api, tenant: Tenant) -> None:
    client = tenant.client()
    first = UUID(_accepted(upload(client, tenant.id, zipped(corpus_files(1))), tenant))
    second = UUID(_accepted(upload(client, tenant.id, zipped(corpus_files(1))), tenant))
    holder = runner(api.system)
    assert holder.claim(tenant.id, first) is not None  # running, its lease held
    api.wait_projected()
    queue = PostgresJobQueue(api.system.projector_conninfo)

    capped = queue.claimable(per_tenant_cap=1, limit=1000)
    roomy = queue.claimable(per_tenant_cap=2, limit=1000)

    assert (tenant.id, second) not in capped
    assert (tenant.id, second) in roomy
    assert (tenant.id, first) not in roomy  # its lease holds
    for job_id in (first, second):
        client.delete(f"/v1/tenants/{tenant.id}/migrations/{job_id}", headers=WRITE)


def test_a_kind_that_fails_fails_the_job_with_its_error(api: Api, tenant: Tenant) -> None:
    client = tenant.client()
    job_id = _accepted(upload(client, tenant.id, zipped(corpus_files(2))), tenant)
    stored = api.system.settings.data_dir / "migrations" / "uploads" / job_id
    shutil.rmtree(stored)  # the source is gone by the time a worker runs the job

    _run_all(api)

    done = client.get(f"/v1/tenants/{tenant.id}/migrations/{job_id}").json()
    assert done["job_status"] == "failed"
    assert done["error_details"] == "SourceNotFound: no such file or directory: unpacked"
    assert str(api.system.settings.data_dir) not in done["error_details"]  # no server paths


def test_progress_is_recorded_at_most_once_per_second(
    api: Api, tenant: Tenant, pg_admin_url: str
) -> None:
    client = tenant.client()
    config = json.dumps({"batch_size": 5})
    job_id = _accepted(
        upload(client, tenant.id, zipped(corpus_files(150)), source_config=config), tenant
    )
    started = time.monotonic()
    _run_all(api)
    elapsed = time.monotonic() - started

    with psycopg.connect(pg_admin_url, autocommit=True) as conn:
        row = conn.execute(
            "SELECT count(*) FROM governance_events WHERE originator_id = %s AND topic LIKE %s",
            [UUID(job_id), "%MigrationJob.Progressed"],
        ).fetchone()
    progressed = int(row[0]) if row else 0
    assert 1 <= progressed <= elapsed + 1
    assert progressed < 30  # 30 batches
    assert (
        client.get(f"/v1/tenants/{tenant.id}/migrations/{job_id}").json()["processed_items"] == 150
    )


def test_uploads_beyond_the_request_limit_are_taken_up_to_the_setting(
    api: Api, tenant: Tenant, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = tenant.client()
    policy = corpus_files(1)["bench-00000.json"]
    padded = policy.rstrip()[:-1] + ', "description": "' + "x" * (3 << 20) + '"}'
    monkeypatch.setattr(
        api.system,
        "settings",
        dataclasses.replace(api.system.settings, migration_upload_max_bytes=4 << 20),
    )
    taken = upload(client, tenant.id, padded.encode(), filename="big.json")
    job_id = _accepted(taken, tenant)
    client.delete(f"/v1/tenants/{tenant.id}/migrations/{job_id}", headers=WRITE)
    monkeypatch.setattr(
        api.system,
        "settings",
        dataclasses.replace(api.system.settings, migration_upload_max_bytes=1 << 20),
    )
    refused = upload(client, tenant.id, padded.encode(), filename="big.json")
    error = _error(refused, 422, "VALIDATION_ERROR")
    assert error["details"]["fields"][0]["field"] == "file"
    assert "larger than 1048576 bytes" in error["message"]
