"""The audit log over real HTTP: query with filters and pages, cross-tenant refusal, exports
(CSV with formulas neutralised, PDF read back as text), retention settings."""

from __future__ import annotations

import csv
import hashlib
import io
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import httpx
import psycopg
import pytest
from pypdf import PdfReader

from domain.maci import MaciRole
from tests.integration.spine.support import seed_audit_rows
from tests.peers.http import HASH, Api

pytestmark = [pytest.mark.e2e, pytest.mark.postgres]

WIDE = {"start_time": "2000-01-01T00:00:00Z", "end_time": "2000-12-31T00:00:00Z"}


def _error(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body = response.json()["error"]
    assert body["code"] == code
    assert body["constitutional_hash"] == HASH
    return dict(body)


@pytest.fixture
def tenant(api: Api, platform: httpx.Client, unique: str) -> dict[str, Any]:
    return api.create_tenant(platform, f"audit-{unique}")


@pytest.fixture
def auditor(api: Api, tenant: dict[str, Any]) -> httpx.Client:
    tid = UUID(tenant["tenant_id"])
    with api.client(api.token(MaciRole.AUDITOR, tenant_id=tid, sub="auditor")) as client:
        yield client


def _now_range() -> dict[str, str]:
    now = datetime.now(UTC)
    return {
        "start_time": (now - timedelta(days=1)).isoformat(),
        "end_time": (now + timedelta(days=1)).isoformat(),
    }


def test_an_auditor_reads_the_tenant_creation_in_the_digest_shape(
    auditor: httpx.Client, tenant: dict[str, Any]
) -> None:
    response = auditor.get(f"/v1/tenants/{tenant['tenant_id']}/audit-log", params=_now_range())
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["total"] == 1
    assert (body["limit"], body["offset"], body["next_cursor"]) == (100, 0, None)
    [event] = body["audit_events"]
    assert event["event_type"] == "tenant.created"
    assert event["event_category"] == "admin"
    assert event["action"] == "create_tenant"
    assert event["chain_seq"] == 1
    for name in (
        "target_id",
        "details",
        "ip_address",
        "user_agent",
        "session_id",
        "error_message",
        "constitutional_validation_passed",
        "constitutional_hash",
    ):
        assert name in event


def test_every_bad_query_parameter_is_listed_at_once(
    auditor: httpx.Client, tenant: dict[str, Any]
) -> None:
    response = auditor.get(
        f"/v1/tenants/{tenant['tenant_id']}/audit-log",
        params={
            "start_time": "yesterday",
            "event_category": "x",
            "result": "maybe",
            "limit": "5000",
            "offset": "-1",
        },
    )
    error = _error(response, 422, "VALIDATION_ERROR")
    fields = {f["field"] for f in error["details"]["fields"]}
    assert fields == {"start_time", "end_time", "event_category", "result", "limit", "offset"}


def test_the_span_is_limited(auditor: httpx.Client, tenant: dict[str, Any]) -> None:
    response = auditor.get(
        f"/v1/tenants/{tenant['tenant_id']}/audit-log",
        params={"start_time": "2000-01-01T00:00:00Z", "end_time": "2010-01-01T00:00:00Z"},
    )
    error = _error(response, 422, "VALIDATION_ERROR")
    assert error["details"]["fields"][0]["field"] == "end_time"


def test_filters_select_exactly_the_matching_rows(
    api: Api, auditor: httpx.Client, tenant: dict[str, Any]
) -> None:
    tid = UUID(tenant["tenant_id"])
    at = datetime(2000, 6, 1, tzinfo=UTC)
    conninfo = api.system.projector_conninfo
    seed_audit_rows(
        conninfo,
        tid,
        [at] * 3,
        actor_id="alice",
        result="denied",
        event_category="authorization",
        event_type="auth.denied",
    )
    seed_audit_rows(conninfo, tid, [at] * 2, actor_id="bob", target_resource="policy/p1")
    path = f"/v1/tenants/{tid}/audit-log"
    cases = [
        ({"actor_id": "alice"}, 3),
        ({"result": "denied"}, 3),
        ({"event_category": "authorization"}, 3),
        ({"event_type": "auth.denied", "actor_id": "bob"}, 0),
        ({"target_resource": "policy/p1"}, 2),
        ({}, 5),
    ]
    for params, total in cases:
        body = auditor.get(path, params={**WIDE, **params}).json()
        assert body["total"] == total, params
        assert len(body["audit_events"]) == total
    narrow = {"start_time": "2000-06-01T00:00:00Z", "end_time": "2000-06-01T12:00:00Z"}
    assert auditor.get(path, params=narrow).json()["total"] == 5
    narrow = {"start_time": "2000-06-01T00:00:01Z", "end_time": "2000-06-02T00:00:00Z"}
    assert auditor.get(path, params=narrow).json()["total"] == 0


def test_cursor_pages_cross_partition_boundaries(
    api: Api, auditor: httpx.Client, tenant: dict[str, Any]
) -> None:
    """Rows in three months (this month's and last month's partitions, and an older month in
    the default partition) page newest first, each row once, by cursor and Link rel=next."""
    tid = UUID(tenant["tenant_id"])
    now = datetime.now(UTC).replace(microsecond=0)
    this_month = now.replace(day=1, hour=0, minute=0, second=0)
    times = [this_month + timedelta(minutes=m) for m in range(7)]
    times += [this_month - timedelta(minutes=m + 1) for m in range(7)]  # last month
    times += [this_month - timedelta(days=70, minutes=m) for m in range(6)]  # default partition
    rows = seed_audit_rows(api.system.projector_conninfo, tid, times)
    expected = [
        str(r["audit_id"]) for r in sorted(rows, key=lambda r: r["timestamp"], reverse=True)
    ]
    params = {
        "start_time": (this_month - timedelta(days=100)).isoformat(),
        "end_time": (this_month + timedelta(hours=1)).isoformat(),
        "event_type": "seed.recorded",
        "limit": "3",
    }
    path = f"/v1/tenants/{tid}/audit-log"
    first = auditor.get(path, params=params)
    seen = [e["audit_id"] for e in first.json()["audit_events"]]
    assert first.json()["total"] == 20
    link = first.headers["link"]
    pages = 1
    while link:
        url = link.split(";")[0].strip("<>")
        response = auditor.get(url)
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["total"] is None  # cursor pages do not count again
        seen += [e["audit_id"] for e in body["audit_events"]]
        link = response.headers.get("link", "")
        assert (body["next_cursor"] is None) == (not link)
        pages += 1
    assert seen == expected
    assert pages == 7
    # the same rows by offset
    by_offset = []
    for offset in range(0, 20, 3):
        body = auditor.get(path, params={**params, "offset": str(offset)}).json()
        by_offset += [e["audit_id"] for e in body["audit_events"]]
    assert by_offset == expected


def test_a_garbled_cursor_is_a_validation_error(
    auditor: httpx.Client, tenant: dict[str, Any]
) -> None:
    response = auditor.get(
        f"/v1/tenants/{tenant['tenant_id']}/audit-log", params={**WIDE, "after": "bm90IGpzb24"}
    )
    assert _error(response, 422, "VALIDATION_ERROR")["details"]["fields"][0]["field"] == "after"


def test_another_tenant_never_sees_the_rows(
    api: Api, platform: httpx.Client, tenant: dict[str, Any], unique: str
) -> None:
    other = api.create_tenant(platform, f"other-{unique}")
    token = api.token(MaciRole.EXECUTIVE, tenant_id=UUID(other["tenant_id"]))
    with api.client(token) as intruder:
        path = f"/v1/tenants/{tenant['tenant_id']}/audit-log"
        _error(intruder.get(path, params=_now_range()), 404, "NOT_FOUND")
        _error(intruder.get(path + "/export", params=_now_range()), 404, "NOT_FOUND")
        _error(intruder.get("/v1/audit-log", params=_now_range()), 403, "FORBIDDEN")
        own = intruder.get(f"/v1/tenants/{other['tenant_id']}/audit-log", params=_now_range())
        assert {e["tenant_id"] for e in own.json()["audit_events"]} == {other["tenant_id"]}


def test_a_monitor_may_not_read_the_audit_log(api: Api, tenant: dict[str, Any]) -> None:
    token = api.token(MaciRole.MONITOR, tenant_id=UUID(tenant["tenant_id"]))
    with api.client(token) as monitor:
        response = monitor.get(f"/v1/tenants/{tenant['tenant_id']}/audit-log", params=_now_range())
        _error(response, 403, "FORBIDDEN")


def test_platform_auditors_query_across_tenants_and_are_audited(
    api: Api, platform: httpx.Client, tenant: dict[str, Any], unique: str
) -> None:
    other = api.create_tenant(platform, f"x-{unique}")
    with api.client(api.token(MaciRole.AUDITOR, sub=f"p-auditor-{unique}")) as client:
        body = client.get(
            "/v1/audit-log", params={**_now_range(), "event_type": "tenant.created", "limit": 1000}
        ).json()
        seen = {e["tenant_id"] for e in body["audit_events"]}
        assert {tenant["tenant_id"], other["tenant_id"]} <= seen
        narrowed = client.get(
            "/v1/audit-log", params={**_now_range(), "tenant_id": other["tenant_id"]}
        ).json()
        assert {e["tenant_id"] for e in narrowed["audit_events"]} == {other["tenant_id"]}
    api.wait_projected()
    with psycopg.connect(api.system.projector_conninfo) as conn:
        audited = conn.execute(
            "SELECT count(*) FROM tenant_audit_log WHERE actor_id = %s "
            "AND action = 'query_audit_log_across_tenants' "
            "AND tenant_id = '00000000-0000-0000-0000-000000000000'",
            [f"p-auditor-{unique}"],
        ).fetchone()
    assert audited == (2,)


# --- exports -------------------------------------------------------------------------------------


def _export(api: Api, client: httpx.Client, tid: str, fmt: str, **params: str) -> httpx.Response:
    start = client.get(
        f"/v1/tenants/{tid}/audit-log/export", params={**WIDE, "format": fmt, **params}
    )
    assert start.status_code == 202, start.text
    body = start.json()
    assert body["export_id"].startswith("exp_")
    assert body["download_url"] is None
    status_url = body["status_url"]
    assert start.headers["location"] == status_url
    queued = client.get(status_url).json()
    assert queued["status"] == "queued"
    _error(client.get(status_url + "/download"), 409, "EXPORT_NOT_READY")
    runner = api.system.export_runner()
    while runner.step():
        pass
    status = client.get(status_url).json()
    assert status["status"] == "completed", status
    assert status["progress"] == 100
    assert status["chain_head"]["seq"] >= 1
    download = client.get(status["download_url"])
    assert download.status_code == 200
    assert download.headers["x-content-sha256"] == status["sha256"]
    assert hashlib.sha256(download.content).hexdigest() == status["sha256"]
    assert int(download.headers["content-length"]) == status["size_bytes"]
    return download


def test_an_auditor_exports_csv_with_formulas_neutralised(
    api: Api, auditor: httpx.Client, tenant: dict[str, Any]
) -> None:
    tid = UUID(tenant["tenant_id"])
    at = datetime(2000, 3, 1, tzinfo=UTC)
    seed_audit_rows(api.system.projector_conninfo, tid, [at], actor_id='=HYPERLINK("x")')
    later = at + timedelta(seconds=1)
    seed_audit_rows(api.system.projector_conninfo, tid, [later], actor_id="-2+3", result="denied")
    download = _export(api, auditor, str(tid), "csv")
    assert download.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(download.content.decode(), newline="")))
    assert [r["actor_id"] for r in rows] == ['\'=HYPERLINK("x")', "'-2+3"]


def test_an_auditor_exports_a_pdf_report(
    api: Api, auditor: httpx.Client, tenant: dict[str, Any]
) -> None:
    tid = UUID(tenant["tenant_id"])
    at = datetime(2000, 4, 1, tzinfo=UTC)
    seed_audit_rows(
        api.system.projector_conninfo,
        tid,
        [at] * 2,
        actor_id="carol",
        event_category="migration",
        action="convert_policy",
    )
    download = _export(api, auditor, str(tid), "pdf", event_category="migration")
    assert download.content.startswith(b"%PDF")
    text = "\n".join(p.extract_text() for p in PdfReader(io.BytesIO(download.content)).pages)
    assert "Filter event_category: migration" in text
    assert "Totals by category: migration: 2" in text
    assert text.count("convert_policy") == 2


def test_every_export_is_audited(api: Api, auditor: httpx.Client, tenant: dict[str, Any]) -> None:
    tid = tenant["tenant_id"]
    start = auditor.get(f"/v1/tenants/{tid}/audit-log/export", params={**WIDE, "format": "json"})
    export_id = start.json()["export_id"]
    api.wait_projected()
    body = auditor.get(
        f"/v1/tenants/{tid}/audit-log", params={**_now_range(), "actor_id": "auditor"}
    ).json()
    [entry] = [e for e in body["audit_events"] if e["action"] == "export_audit_log"]
    assert entry["details"]["export_id"] == export_id
    assert entry["details"]["format"] == "json"


def test_a_bad_format_and_an_unknown_export(auditor: httpx.Client, tenant: dict[str, Any]) -> None:
    tid = tenant["tenant_id"]
    response = auditor.get(f"/v1/tenants/{tid}/audit-log/export", params={"format": "xls"})
    fields = {f["field"] for f in _error(response, 422, "VALIDATION_ERROR")["details"]["fields"]}
    assert fields == {"format", "start_time", "end_time"}
    _error(auditor.get(f"/v1/tenants/{tid}/audit-log/exports/exp_nope"), 404, "NOT_FOUND")


# --- retention -----------------------------------------------------------------------------------


def test_platform_executives_set_retention_and_legal_hold(
    api: Api, platform: httpx.Client, auditor: httpx.Client, tenant: dict[str, Any]
) -> None:
    path = f"/v1/tenants/{tenant['tenant_id']}/audit-log/retention"
    assert auditor.get(path).json()["retention_days"] == 90
    _error(
        auditor.put(path, json={"retention_days": 30, "constitutional_hash": HASH}),
        403,
        "FORBIDDEN",
    )
    bad = platform.put(
        path,
        json={"retention_days": 0, "legal_hold_reason": "a\x01b", "constitutional_hash": HASH},
    )
    fields = {f["field"] for f in _error(bad, 422, "VALIDATION_ERROR")["details"]["fields"]}
    assert fields == {"retention_days", "legal_hold_reason"}
    unknown = platform.put(path, json={"retention_days": 9, "x": 1, "constitutional_hash": HASH})
    _error(unknown, 422, "VALIDATION_ERROR")
    _error(
        platform.put(
            "/v1/tenants/6f0c4b1e-9a7d-4e2f-8b3c-6a1d0e9f8a7b/audit-log/retention",
            json={"retention_days": 30, "constitutional_hash": HASH},
        ),
        404,
        "NOT_FOUND",
    )
    _error(platform.put(path, json={"retention_days": 30}), 400, "CONSTITUTIONAL_HASH_REQUIRED")
    ok = platform.put(
        path,
        json={
            "retention_days": 30,
            "legal_hold": True,
            "legal_hold_reason": "case 42",
            "constitutional_hash": HASH,
        },
    )
    assert ok.status_code == 200, ok.text
    api.wait_projected()
    assert auditor.get(path).json() == {
        "tenant_id": tenant["tenant_id"],
        "retention_days": 30,
        "legal_hold": True,
        "legal_hold_reason": "case 42",
        "constitutional_hash": HASH,
    }
    body = auditor.get(
        f"/v1/tenants/{tenant['tenant_id']}/audit-log",
        params={**_now_range(), "event_type": "admin.change_audit_retention"},
    ).json()
    assert body["audit_events"][0]["details"]["retention_days"] == 30
