"""The audit log's hash chain, retention and export jobs, on the real PostgreSQL."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import threading
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

import psycopg
import pytest
from pypdf import PdfReader

from api.bootstrap import System
from commands.audit import PURGE_ACTION
from projections.audit_export import ExportRunner, new_export_id
from projections.audit_queries import AuditFilters, verify_tenant_chain
from tests.integration.spine.support import PLATFORM, catch_up, seed_audit_rows

pytestmark = pytest.mark.postgres


def verify(system: System, tenant_id: UUID) -> Any:
    with psycopg.connect(system.projector_conninfo, autocommit=True) as conn:
        return verify_tenant_chain(conn, tenant_id)


def test_rows_of_a_tenant_form_one_chain_in_log_order(system: System, create_tenant: Any) -> None:
    tenant = create_tenant()
    system.tenants.update(PLATFORM, tenant.id, {"max_storage_gb": 20})
    catch_up(system)
    report = verify(system, tenant.id)
    assert report.ok, report.problems
    assert report.rows == 2
    assert (report.first_seq, report.last_seq, report.head_seq) == (1, 2, 2)


def test_an_edited_row_is_detected(system: System, pg_admin_url: str) -> None:
    tenant_id = uuid4()
    rows = seed_audit_rows(system.projector_conninfo, tenant_id, [datetime.now(UTC)] * 3)
    assert verify(system, tenant_id).ok
    with psycopg.connect(pg_admin_url, autocommit=True) as conn:
        conn.execute(
            "UPDATE tenant_audit_log SET result = 'failure' WHERE audit_id = %s",
            [rows[1]["audit_id"]],
        )
    report = verify(system, tenant_id)
    assert not report.ok
    assert report.problems == [{"kind": "altered", "seq": 2, "audit_id": str(rows[1]["audit_id"])}]


def test_an_edited_details_value_is_detected(system: System, pg_admin_url: str) -> None:
    tenant_id = uuid4()
    rows = seed_audit_rows(system.projector_conninfo, tenant_id, [datetime.now(UTC)] * 2)
    with psycopg.connect(pg_admin_url, autocommit=True) as conn:
        conn.execute(
            "UPDATE tenant_audit_log SET details = '{\"n\": 7}' WHERE audit_id = %s",
            [rows[0]["audit_id"]],
        )
    kinds = [p["kind"] for p in verify(system, tenant_id).problems]
    assert kinds == ["altered"]


def test_a_deleted_row_is_detected(system: System, pg_admin_url: str) -> None:
    tenant_id = uuid4()
    rows = seed_audit_rows(system.projector_conninfo, tenant_id, [datetime.now(UTC)] * 4)
    with psycopg.connect(pg_admin_url, autocommit=True) as conn:
        conn.execute("DELETE FROM tenant_audit_log WHERE audit_id = %s", [rows[1]["audit_id"]])
    report = verify(system, tenant_id)
    assert {"kind": "missing", "from_seq": 2, "to_seq": 2} in report.problems


def test_a_deleted_newest_row_is_detected(system: System, pg_admin_url: str) -> None:
    tenant_id = uuid4()
    rows = seed_audit_rows(system.projector_conninfo, tenant_id, [datetime.now(UTC)] * 3)
    with psycopg.connect(pg_admin_url, autocommit=True) as conn:
        conn.execute("DELETE FROM tenant_audit_log WHERE audit_id = %s", [rows[2]["audit_id"]])
    report = verify(system, tenant_id)
    assert report.problems == [{"kind": "missing_tail", "from_seq": 3, "to_seq": 3}]


def test_a_row_recomputed_with_a_new_hash_breaks_the_next_link(
    system: System, pg_admin_url: str
) -> None:
    """Rewriting a row and its own hash is not enough: the next row still names the old one."""
    tenant_id = uuid4()
    rows = seed_audit_rows(system.projector_conninfo, tenant_id, [datetime.now(UTC)] * 3)
    from domain.audit_chain import row_hash  # noqa: PLC0415

    forged = {**rows[1], "result": "denied"}
    with psycopg.connect(pg_admin_url, autocommit=True) as conn:
        conn.execute(
            "UPDATE tenant_audit_log SET result = 'denied', row_hash = %s WHERE audit_id = %s",
            [row_hash(rows[1]["prev_hash"], forged), rows[1]["audit_id"]],
        )
    report = verify(system, tenant_id)
    assert [p["kind"] for p in report.problems] == ["broken_link"]
    assert report.problems[0]["seq"] == 3


# --- retention ----------------------------------------------------------------------------------


def _at(year: int, month: int, day: int) -> datetime:
    return datetime(year, month, day, 12, tzinfo=UTC)


@pytest.fixture
def old_partition(pg_admin_url: str) -> Any:
    """A monthly partition of a month long past (2001-01), as the partition worker makes them."""
    name = "tenant_audit_log_y2001m01"
    with psycopg.connect(pg_admin_url, autocommit=True) as conn:
        conn.execute(
            f"CREATE TABLE IF NOT EXISTS {name} PARTITION OF tenant_audit_log "
            "FOR VALUES FROM ('2001-01-01') TO ('2001-02-01')"
        )
    yield name
    with psycopg.connect(pg_admin_url, autocommit=True) as conn:
        conn.execute(f"DROP TABLE IF EXISTS {name}")


def _partition_exists(pg_admin_url: str, name: str) -> bool:
    with psycopg.connect(pg_admin_url, autocommit=True) as conn:
        return conn.execute("SELECT to_regclass(%s)", [name]).fetchone() != (None,)


def _seqs(system: System, tenant_id: UUID) -> list[int]:
    with psycopg.connect(system.projector_conninfo, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT chain_seq FROM tenant_audit_log WHERE tenant_id = %s ORDER BY chain_seq",
            [tenant_id],
        ).fetchall()
    return [r[0] for r in rows]


def test_retention_drops_expired_partitions_deletes_expired_rows_and_is_audited(
    system: System, pg_admin_url: str, old_partition: str
) -> None:
    tenant_id = uuid4()
    times = [_at(2001, 1, 5), _at(2001, 1, 20), _at(2001, 2, 10), _at(2001, 2, 25)]
    seed_audit_rows(system.projector_conninfo, tenant_id, times)
    clock = _at(2001, 5, 15)  # 90 days before: 2001-02-14
    runner = system.retention_runner(clock=lambda: clock)
    purged = runner.purge(only={tenant_id})
    assert len(purged) == 1
    assert purged[0]["partitions_dropped"] == [old_partition]
    assert purged[0]["rows_deleted"] == 3
    assert purged[0]["purged_through_seq"] == 3
    assert not _partition_exists(pg_admin_url, old_partition)
    assert _seqs(system, tenant_id) == [4]
    catch_up(system)  # the purge's own audit entry joins the chain
    with psycopg.connect(system.projector_conninfo, autocommit=True) as conn:
        entry = conn.execute(
            "SELECT action, actor_id, details, chain_seq FROM tenant_audit_log "
            "WHERE tenant_id = %s AND action = %s",
            [tenant_id, PURGE_ACTION],
        ).fetchone()
    assert entry is not None
    assert entry[1] == "system"
    assert entry[2]["rows_deleted"] == 3
    assert entry[3] == 5
    report = verify(system, tenant_id)
    assert report.ok, report.problems
    assert (report.first_seq, report.last_seq) == (4, 5)
    assert runner.purge(only={tenant_id}) == []  # nothing more has expired


def test_retention_keeps_rows_younger_than_the_tenant_setting(system: System) -> None:
    tenant_id = uuid4()
    seed_audit_rows(system.projector_conninfo, tenant_id, [_at(2002, 1, 1), _at(2002, 3, 1)])
    with psycopg.connect(system.projector_conninfo, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO audit_settings (tenant_id, retention_days) VALUES (%s, 400)", [tenant_id]
        )
    runner = system.retention_runner(clock=lambda: _at(2003, 2, 1))  # cutoff 2001-12-28: none
    assert runner.purge(only={tenant_id}) == []
    runner = system.retention_runner(clock=lambda: _at(2003, 2, 15))  # cutoff 2002-01-11
    assert [p["rows_deleted"] for p in runner.purge(only={tenant_id})] == [1]
    assert _seqs(system, tenant_id) == [2]


def test_a_legal_hold_blocks_retention(
    system: System, pg_admin_url: str, old_partition: str
) -> None:
    held, free = uuid4(), uuid4()
    seed_audit_rows(system.projector_conninfo, held, [_at(2001, 1, 3), _at(2001, 1, 4)])
    seed_audit_rows(system.projector_conninfo, free, [_at(2001, 1, 3)])
    with psycopg.connect(system.projector_conninfo, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO audit_settings (tenant_id, legal_hold, legal_hold_reason) "
            "VALUES (%s, true, 'litigation')",
            [held],
        )
    runner = system.retention_runner(clock=lambda: _at(2001, 12, 1))
    purged = runner.purge(only={held, free})
    assert [p["tenant_id"] for p in purged] == [free]
    assert purged[0]["partitions_dropped"] == []  # the held tenant's rows share the partition
    assert _seqs(system, held) == [1, 2]
    assert _seqs(system, free) == []
    assert _partition_exists(pg_admin_url, old_partition)


# --- export jobs ----------------------------------------------------------------------------------


def _queue(system: System, tenant_id: UUID, fmt: str, filters: AuditFilters) -> str:
    export_id = new_export_id()
    with psycopg.connect(system.projector_conninfo, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO audit_exports (export_id, tenant_id, requested_by, format, filters) "
            "VALUES (%s, %s, 'tester', %s, %s)",
            [export_id, tenant_id, fmt, json.dumps(filters.as_dict())],
        )
    return export_id


def _job(system: System, export_id: str) -> dict[str, Any]:
    with psycopg.connect(system.projector_conninfo, autocommit=True) as conn:
        cur = conn.execute("SELECT * FROM audit_exports WHERE export_id = %s", [export_id])
        columns = [c.name for c in cur.description or []]
        row = cur.fetchone()
    assert row is not None
    return dict(zip(columns, row, strict=True))


def _run_export(system: System, tenant_id: UUID, filters: AuditFilters, fmt: str) -> dict[str, Any]:
    export_id = _queue(system, tenant_id, fmt, filters)
    runner = ExportRunner(system.projector_conninfo, expire_seconds=3600)
    while runner.step():
        pass
    job = _job(system, export_id)
    assert job["status"] == "completed", job["error"]
    assert job["progress"] == 100
    assert hashlib.sha256(bytes(job["content"])).hexdigest() == job["sha256"]
    assert job["size_bytes"] == len(job["content"])
    return job


HOSTILE = ["=1+2", "+SUM(A1)", "-3", "@cmd", "\tx", "\rx", 'a,"b"\nc', "plain é ✓"]


@pytest.fixture
def exported_tenant(system: System) -> tuple[UUID, AuditFilters]:
    tenant_id = uuid4()
    now = datetime.now(UTC)
    for n, actor in enumerate(HOSTILE):
        seed_audit_rows(
            system.projector_conninfo,
            tenant_id,
            [now - timedelta(minutes=len(HOSTILE) - n)],
            actor_id=actor,
            result="denied" if n % 2 else "success",
        )
    filters = AuditFilters(start_time=now - timedelta(days=1), end_time=now + timedelta(days=1))
    return tenant_id, filters


def test_csv_export_is_rfc4180_and_neutralises_formulas(
    system: System, exported_tenant: tuple[UUID, AuditFilters]
) -> None:
    job = _run_export(system, *exported_tenant, "csv")
    text = bytes(job["content"]).decode("utf-8")
    assert text.count("\r\n") >= len(HOSTILE) + 1  # CRLF line ends
    rows = list(csv.DictReader(io.StringIO(text, newline="")))
    actors = [r["actor_id"] for r in rows]
    assert actors == ["'=1+2", "'+SUM(A1)", "'-3", "'@cmd", "'\tx", "'\rx", 'a,"b"\nc', "plain é ✓"]
    for row in rows:
        for cell in row.values():
            assert not cell.startswith(("=", "+", "-", "@", "\t", "\r")), cell
    assert job["rows_written"] == len(HOSTILE)


def test_json_and_jsonl_exports_carry_rows_and_the_chain_head(
    system: System, exported_tenant: tuple[UUID, AuditFilters]
) -> None:
    tenant_id, filters = exported_tenant
    document = json.loads(bytes(_run_export(system, tenant_id, filters, "json")["content"]))
    assert document["export"]["chain_head"]["seq"] == len(HOSTILE)
    assert document["export"]["totals"]["by_result"] == {"success": 4, "denied": 4}
    assert [r["actor_id"] for r in document["rows"]] == HOSTILE
    lines = bytes(_run_export(system, tenant_id, filters, "jsonl")["content"]).splitlines()
    assert json.loads(lines[0])["export"]["total_rows"] == len(HOSTILE)
    assert [json.loads(line)["chain_seq"] for line in lines[1:]] == list(range(1, 9))


def test_pdf_export_is_a_readable_report(
    system: System, exported_tenant: tuple[UUID, AuditFilters]
) -> None:
    tenant_id, filters = exported_tenant
    job = _run_export(system, tenant_id, replace(filters, result="denied"), "pdf")
    text = "\n".join(p.extract_text() for p in PdfReader(io.BytesIO(bytes(job["content"]))).pages)
    assert f"Audit log export - tenant {tenant_id}" in text
    assert "Filter result: denied" in text
    assert "Totals by result: denied: 4" in text
    assert "Chain head: seq 8" in text
    assert "+SUM(A1)" in text
    assert "@cmd" in text
    assert "=1+2" not in text  # a success row, filtered out


def test_an_expired_export_loses_its_file(
    system: System, exported_tenant: tuple[UUID, AuditFilters]
) -> None:
    job = _run_export(system, *exported_tenant, "csv")
    later = job["expires_at"] + timedelta(seconds=1)
    runner = ExportRunner(system.projector_conninfo, expire_seconds=3600, clock=lambda: later)
    assert runner.expire() >= 1
    expired = _job(system, job["export_id"])
    assert (expired["status"], expired["content"]) == ("expired", None)


def test_the_export_worker_runs_a_job_when_notified(
    system: System, exported_tenant: tuple[UUID, AuditFilters]
) -> None:
    """The supervised worker's loop: woken by the NOTIFY of a queued job (it polls only once a
    minute here), runs it, and stops when asked."""
    runner = ExportRunner(system.projector_conninfo, expire_seconds=3600, poll_seconds=60)
    stop = threading.Event()
    worker = threading.Thread(target=runner.run, args=(stop,), daemon=True)
    worker.start()
    try:
        time.sleep(0.5)  # listening
        tenant_id, filters = exported_tenant
        export_id = _queue(system, tenant_id, "jsonl", filters)
        with psycopg.connect(system.projector_conninfo, autocommit=True) as conn:
            conn.execute("SELECT pg_notify('audit_exports', %s)", [export_id])
        deadline = time.monotonic() + 20
        while _job(system, export_id)["status"] != "completed" and time.monotonic() < deadline:
            time.sleep(0.05)
        assert _job(system, export_id)["status"] == "completed"
    finally:
        stop.set()
        with psycopg.connect(system.projector_conninfo, autocommit=True) as conn:
            conn.execute("SELECT pg_notify('audit_exports', 'stop')")
        worker.join(10)
    assert not worker.is_alive()
