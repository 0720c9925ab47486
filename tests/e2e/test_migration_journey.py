"""The migration engineer's whole path over real HTTP, on one tenant, as
docs/migration-playbook.md walks it: convert the legacy policies (activated) and read the report,
import the legacy decision log (bad rows, repeats and conflicts counted exactly), replay it in
shadow mode and read the metrics, run a gap analysis, step the rollout up to 100 % (past 50 % only
with a JUDICIAL approver other than the requester), then break the policy and see the automatic
rollback to 0 % recorded. Every job is run by the deployment's own migration runner, with every
kind the deployment registers."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import httpx
import psycopg
import pytest
from psycopg import sql
from psycopg.conninfo import make_conninfo
from pypdf import PdfReader

from domain.maci import MaciRole
from tests.e2e.journey_corpus import (
    DECISIONS,
    FAULTY_DOCUMENTS,
    LEGACY_POLICIES,
    agreement_by_hour,
    decision_log_csv,
    missed,
    overruled,
)
from tests.e2e.migration_support import WRITE, zipped
from tests.peers.http import HASH, Api

pytestmark = [pytest.mark.e2e, pytest.mark.postgres, pytest.mark.rego]

MISSED = sum(missed(i) for i in range(DECISIONS))
OVERRULED = sum(overruled(i) for i in range(DECISIONS))


class Journey:
    """One tenant and a client per person of the story."""

    def __init__(self, api: Api, platform: httpx.Client, slug: str) -> None:
        self.api = api
        self.id = UUID(api.create_tenant(platform, slug)["tenant_id"])
        self.base = f"/v1/tenants/{self.id}"
        self._clients: list[httpx.Client] = []
        self.lee = self.client(MaciRole.LEGISLATIVE, "lee")  # converts, authors policies
        self.ivan = self.client(MaciRole.IMPLEMENTER, "ivan")  # imports, runs shadow mode
        self.judy = self.client(MaciRole.JUDICIAL, "judy")  # approves past 50 %, reads audit

    def client(self, role: MaciRole, sub: str) -> httpx.Client:
        client = self.api.client(self.api.token(role, tenant_id=self.id, sub=sub))
        self._clients.append(client)
        return client

    def close(self) -> None:
        for client in self._clients:
            client.close()

    def run_jobs(self) -> None:
        """Run every claimable job to its end with the deployment's runner, as the
        `migration_jobs` worker does."""
        self.api.wait_projected()
        runner = self.api.system.migration_runner(poll_seconds=0.05)
        while runner.run_once():
            self.api.wait_projected()
        self.api.wait_projected()

    def started(self, response: httpx.Response) -> str:
        assert response.status_code == 202, response.text
        body = response.json()
        assert body["status_url"] == f"{self.base}/migrations/{body['job_id']}"
        return str(body["job_id"])

    def job(self, job_id: str) -> dict[str, Any]:
        response = self.ivan.get(f"{self.base}/migrations/{job_id}")
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        assert body["job_status"] == "completed", body
        assert body["progress_percentage"] == 100
        return body

    def results(self, job_id: str) -> dict[str, Any]:
        response = self.ivan.get(f"{self.base}/migrations/{job_id}/results")
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    def report(self, job_id: str) -> tuple[str, int]:
        """The text of the job's PDF report and its number of images (charts)."""
        response = self.ivan.get(f"{self.base}/migrations/{job_id}/report.pdf")
        assert response.status_code == 200, response.text
        assert response.headers["content-type"] == "application/pdf"
        reader = PdfReader(io.BytesIO(response.content))
        text = "\n".join(page.extract_text() for page in reader.pages)
        return text, sum(len(page.images) for page in reader.pages)

    def shadow(self, client: httpx.Client, **body: Any) -> httpx.Response:
        return client.post(f"{self.base}/shadow", json={**body, "constitutional_hash": HASH})

    def compare(self, decisions: list[dict[str, Any]]) -> dict[str, Any]:
        response = self.ivan.post(
            f"{self.base}/shadow/decisions", json={"decisions": decisions}, headers=WRITE
        )
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    def status(self) -> dict[str, Any]:
        response = self.ivan.get(f"{self.base}/shadow")
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body


@pytest.fixture
def journey(api: Api, platform: httpx.Client, unique: str) -> Iterator[Journey]:
    made = Journey(api, platform, f"journey-{unique}")
    yield made
    made.close()


def _live(start: int, count: int, **context: Any) -> list[dict[str, Any]]:
    """Live legacy decisions on which both engines agree (owners read, guests are refused)."""
    return [
        {
            "decision_id": f"live-{n}",
            "principal": f"user{n}@example.com",
            "action": "read",
            "resource": f"documents/{n}",
            "context": {"role": "owner" if n % 2 else "guest", **context},
            "decision": "allow" if n % 2 else "deny",
            "latency_ms": 4.0,
        }
        for n in range(start, start + count)
    ]


def _convert(journey: Journey) -> None:
    response = journey.lee.post(
        f"{journey.base}/migrations/upload",
        files={"file": ("legacy.zip", zipped(LEGACY_POLICIES), "application/zip")},
        data={
            "job_type": "policy_conversion",
            "source_system": "LegacyGovernanceV1",
            "source_config": json.dumps({"activate": True}),
            "constitutional_hash": HASH,
        },
    )
    job_id = journey.started(response)
    journey.run_jobs()

    job = journey.job(job_id)
    assert (job["total_items"], job["successful_items"], job["failed_items"]) == (3, 2, 1)
    results = journey.results(job_id)
    summary = results["result_summary"]
    assert (summary["converted_policies"], summary["activated"]) == (2, 2)
    [failed] = results["failed_items_details"]
    assert failed["item_id"].startswith("broken (")  # the zip here has a legacy/ folder
    assert "broken.rules:2:25" in failed["recommendation"]
    text, images = journey.report(job_id)
    assert "converted policies: 2" in text
    assert "Conversion coverage" in text
    assert "broken" in text
    assert images == 1
    documents = journey.lee.get(f"{journey.base}/policies/documents").json()
    assert (documents["status"], documents["active_version"]) == ("active", 1)


def _import(journey: Journey) -> str:
    response = journey.ivan.post(
        f"{journey.base}/migrations/upload",
        files={"file": ("decisions.csv", decision_log_csv().encode(), "text/csv")},
        data={
            "job_type": "decision_log_import",
            "source_system": "LegacyGovernanceV1",
            "source_config": json.dumps({"batch_size": 400}),
            "constitutional_hash": HASH,
        },
    )
    job_id = journey.started(response)
    journey.run_jobs()

    rows = DECISIONS + 9
    job = journey.job(job_id)
    assert (job["total_items"], job["processed_items"]) == (rows, rows)
    assert (job["successful_items"], job["failed_items"]) == (rows - 5, 5)
    results = journey.results(job_id)
    summary = results["result_summary"]
    assert {k: summary[k] for k in ("rows", "imported", "skipped_duplicates")} == {
        "rows": rows,
        "imported": DECISIONS,
        "skipped_duplicates": 4,
    }
    assert (summary["conflicts"], summary["invalid_rows"]) == (2, 3)
    failed = {f["item_id"]: f["error"] for f in results["failed_items_details"]}
    assert set(failed) == {f"row {n}" for n in (1101, 1102, 1103, 1108, 1109)}
    assert failed["row 1101"].startswith("timestamp:")
    assert failed["row 1102"].startswith("decision:")
    assert failed["row 1103"].startswith("principal:")
    assert failed["row 1108"] == "conflicts with a decision imported before"
    assert failed["row 1109"] == "conflicts with row 1100"
    return job_id


def _replay(journey: Journey, import_job: str) -> None:
    configured = journey.shadow(journey.ivan, action="configure", policy_id="documents")
    assert configured.status_code == 200, configured.text
    response = journey.ivan.post(
        f"{journey.base}/migrations",
        json={
            "job_type": "shadow_mode",
            "source_system": "LegacyGovernanceV1",
            "source_config": {"import_job_id": import_job, "batch_size": 300},
            "constitutional_hash": HASH,
        },
    )
    job_id = journey.started(response)
    journey.run_jobs()

    job = journey.job(job_id)
    counts = (job["total_items"], job["successful_items"], job["failed_items"])
    assert counts == (DECISIONS, DECISIONS, 0)
    agreement = (DECISIONS - MISSED - OVERRULED) / DECISIONS
    summary = journey.results(job_id)["result_summary"]
    assert summary["decisions"] == DECISIONS
    assert summary["agreement_rate"] == agreement
    assert [tuple(p) for p in summary["agreement_series"]] == agreement_by_hour()
    step = journey.status()["current_step"]
    assert (step["decisions"], step["agreement_rate"]) == (DECISIONS, agreement)
    assert step["disagreements"] == {
        "legacy_allow_rego_deny": MISSED,
        "legacy_deny_rego_allow": OVERRULED,
        "rego_error": 0,
    }
    assert step["missed_violations"] == MISSED
    text, images = journey.report(job_id)
    series = agreement_by_hour()
    lowest = min(rate for _, rate in series)
    assert f"Agreement over time ({len(series)} points, lowest {lowest:.2%})" in text
    assert images == 1  # the agreement chart, drawn from the replay's series


def _gaps(journey: Journey) -> None:
    response = journey.lee.post(
        f"{journey.base}/migrations",
        json={
            "job_type": "gap_analysis",
            "source_system": "LegacyGovernanceV1",
            "source_config": {"scope": "active"},
            "constitutional_hash": HASH,
        },
    )
    job_id = journey.started(response)
    journey.run_jobs()

    summary = journey.results(job_id)["result_summary"]
    assert (summary["policies_analysed"], summary["gaps_found"], summary["score"]) == (2, 3, 4)
    assert summary["gap_severities"] == {"critical": 0, "high": 0, "medium": 1, "low": 2}
    gaps = journey.lee.get(f"{journey.base}/gaps", params={"limit": 1000}).json()
    assert gaps["total"] == summary["gaps_found"]
    [run] = gaps["trend"]
    assert (run["run_id"], run["score"]) == (job_id, summary["score"])
    assert run["gap_severities"] == summary["gap_severities"]
    text, images = journey.report(job_id)
    assert "Gap severities" in text
    assert images == 1


def _step_up_to_100(journey: Journey) -> None:
    stepped = journey.shadow(journey.ivan, action="request_step", target=25)
    assert stepped.status_code == 200, stepped.text  # the replay is the evidence of step 0
    assert stepped.json()["percentage"] == 25
    journey.compare(_live(0, 1000))
    assert journey.shadow(journey.ivan, action="request_step", target=50).json()["percentage"] == 50
    journey.compare(_live(1000, 1000))
    requested = journey.shadow(journey.ivan, action="request_step", target=100).json()
    assert requested["percentage"] == 50
    assert requested["pending_approval"] == {"target": 100, "requested_by": "ivan"}
    refused = journey.shadow(journey.ivan, action="approve")
    assert refused.status_code == 403, refused.text  # the requester, and not JUDICIAL
    approved = journey.shadow(journey.judy, action="approve")
    assert approved.status_code == 200, approved.text
    assert (approved.json()["percentage"], approved.json()["next_step"]) == (100, None)
    served = journey.compare(_live(2000, 1000))["results"]
    assert all(r["routed_to_rego"] and r["served_decision"] == r["rego_decision"] for r in served)


def _break_and_roll_back(journey: Journey) -> None:
    """A faulty version of the policy goes live: it cannot decide requests that carry
    `context.fail`; past 5 % errors in the window the rollout falls back to 0 % by itself."""
    submitted = journey.lee.post(
        f"{journey.base}/policies",
        json={"format": "rego", "source": FAULTY_DOCUMENTS, "constitutional_hash": HASH},
    )
    assert submitted.status_code == 201, submitted.text
    [added] = submitted.json()["policies"]
    assert (added["policy_id"], added["version"]) == ("documents", 2)
    version = added["version"]
    activated = journey.lee.post(
        f"{journey.base}/policies/documents/activate",
        json={"version": version, "constitutional_hash": HASH},
    )
    assert activated.status_code == 200, activated.text

    answered = journey.compare(_live(3000, 60, fail=True))

    assert answered["percentage"] == 0
    evidence = answered["rolled_back"]
    assert (evidence["errors"], evidence["window_decisions"]) == (60, 1000)
    assert (evidence["rate"], evidence["threshold"]) == (0.06, 0.05)
    assert evidence["percentage_before"] == 100
    assert all(r["agreement"] == "rego_error" for r in answered["results"])
    assert all(r["served_decision"] == r["legacy_decision"] for r in answered["results"])
    status = journey.status()
    assert (status["percentage"], status["next_step"]) == (0, 25)
    journey.api.wait_projected()
    now = datetime.now(UTC)
    audit = journey.judy.get(
        f"{journey.base}/audit-log",
        params={
            "start_time": (now - timedelta(hours=1)).isoformat(),
            "end_time": (now + timedelta(hours=1)).isoformat(),
            "event_type": "shadow_rollout.rolled_back",
        },
    )
    assert audit.status_code == 200, audit.text
    [entry] = audit.json()["audit_events"]
    assert entry["actor_type"] == "system"
    assert entry["details"]["automatic"] is True
    assert entry["details"]["evidence"]["errors"] == 60


def test_from_legacy_files_to_100_percent_and_the_automatic_rollback(journey: Journey) -> None:
    _convert(journey)
    import_job = _import(journey)
    _replay(journey, import_job)
    _gaps(journey)
    listed = journey.ivan.get(f"{journey.base}/migrations", params={"status": "completed"}).json()
    assert [j["job_type"] for j in listed["jobs"]] == [  # newest first
        "gap_analysis",
        "shadow_mode",
        "decision_log_import",
        "policy_conversion",
    ]
    _step_up_to_100(journey)
    _break_and_roll_back(journey)


@pytest.fixture
def legacy_database(pg_admin_url: str, unique: str) -> Iterator[tuple[str, str]]:
    """A legacy decision database on the session's PostgreSQL, readable only by a role that
    must give its password (a pg_hba.conf line of its own); yields (conninfo, password)."""
    role, database = f"legacy_reader_{unique}", f"legacy_{unique}"
    password = f"Pw-{uuid4().hex}"
    with psycopg.connect(pg_admin_url, autocommit=True) as admin:
        hba = Path(str(admin.execute("SHOW hba_file").fetchone()[0]))  # type: ignore[index]
        original = hba.read_text()
        hba.write_text(f"local all {role} scram-sha-256\n{original}")
        admin.execute("SELECT pg_reload_conf()")
        admin.execute(
            sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(
                sql.Identifier(role), sql.Literal(password)
            )
        )
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(database)))
        try:
            with psycopg.connect(make_conninfo(pg_admin_url, dbname=database)) as legacy:
                legacy.execute(
                    "CREATE TABLE decisions (id int PRIMARY KEY, at timestamptz, who text, "
                    "verb text, object text, ctx jsonb, allowed boolean, why text, ms real)"
                )
                legacy.execute(
                    "INSERT INTO decisions SELECT n, timestamptz '2025-11-02 10:00Z' + n * "
                    "interval '1 minute', 'user' || n, 'read', 'documents/' || n, "
                    "jsonb_build_object('role', CASE WHEN n % 2 = 0 THEN 'owner' ELSE 'guest' "
                    "END), n % 2 = 0, 'legacy rule 7', 2.5 FROM generate_series(1, 120) AS n"
                )
                legacy.execute(
                    sql.SQL("GRANT SELECT ON decisions TO {}").format(sql.Identifier(role))
                )
            yield (
                make_conninfo(pg_admin_url, dbname=database, user=role, password=password),
                password,
            )
        finally:
            hba.write_text(original)
            admin.execute("SELECT pg_reload_conf()")
            admin.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(database))
            )
            admin.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(role)))


def test_a_postgresql_source_with_a_password_imports_and_the_password_is_kept_nowhere(
    journey: Journey,
    legacy_database: tuple[str, str],
    pg_admin_url: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    conninfo, password = legacy_database
    config = {
        "format": "postgresql",
        "conninfo": conninfo,
        "query": "SELECT id, at, who, verb, object, ctx, allowed, why, ms FROM decisions "
        "ORDER BY id",
        "column_mapping": {
            "id": "decision_id",
            "at": "timestamp",
            "who": "principal",
            "verb": "action",
            "object": "resource",
            "ctx": "context",
            "allowed": "decision",
            "why": "reason",
            "ms": "latency_ms",
        },
        "batch_size": 50,
    }
    caplog.set_level(logging.DEBUG)
    wrong = journey.ivan.post(
        f"{journey.base}/migrations",
        json={
            "job_type": "decision_log_import",
            "source_system": "LegacyPdp",
            "source_config": {**config, "conninfo": conninfo.replace(password, "Pw-wrong")},
            "constitutional_hash": HASH,
        },
    )
    assert wrong.status_code == 422, wrong.text  # the password is really checked
    assert [f["field"] for f in wrong.json()["error"]["details"]["fields"]] == [
        "source_config.conninfo"
    ]

    response = journey.ivan.post(
        f"{journey.base}/migrations",
        json={
            "job_type": "decision_log_import",
            "source_system": "LegacyPdp",
            "source_config": config,
            "constitutional_hash": HASH,
        },
    )
    job_id = journey.started(response)
    journey.run_jobs()

    job = journey.job(job_id)
    assert job["source_config"]["conninfo"] == "***"
    assert (job["total_items"], job["successful_items"], job["failed_items"]) == (120, 120, 0)
    results = journey.results(job_id)
    assert results["result_summary"]["imported"] == 120
    seen = [
        job,
        results,
        journey.ivan.get(f"{journey.base}/migrations").json(),
        journey.ivan.get(f"{journey.base}/migrations/{job_id}/report.pdf").content.decode(
            "latin-1"
        ),
    ]
    assert password not in json.dumps(seen)
    assert any(job_id in record.getMessage() for record in caplog.records)  # the worker's lines
    assert all(password not in f"{record.getMessage()} {vars(record)}" for record in caplog.records)
    journey.api.wait_projected()
    with psycopg.connect(pg_admin_url, autocommit=True) as admin:
        stored = admin.execute(
            "SELECT count(*), count(*) FILTER (WHERE position(%s::bytea IN state) > 0) "
            "FROM governance_events WHERE originator_id = %s",
            [password.encode(), UUID(job_id)],
        ).fetchone()
        assert stored is not None
        assert stored[0] >= 3  # created, claimed, progress ... completed
        assert stored[1] == 0
        tables = admin.execute(
            "SELECT quote_ident(table_name) FROM information_schema.tables "
            "WHERE table_schema = 'public' AND table_type = 'BASE TABLE'"
        ).fetchall()
        leaks = [
            name
            for (name,) in tables
            if admin.execute(
                sql.SQL("SELECT EXISTS (SELECT FROM {} AS t WHERE t::text LIKE %s)").format(
                    sql.SQL(name)
                ),
                [f"%{password}%"],
            ).fetchone()
            != (False,)
        ]
    assert leaks == []


def _heredoc(doc: str, command: str) -> str:
    start = doc.index(f"{command}\n") + len(command) + 1
    return doc[start : doc.index("\nEOF\n", start) + 1]


def test_the_playbook_writes_the_files_this_journey_uses() -> None:
    doc = (Path(__file__).resolve().parents[2] / "docs" / "migration-playbook.md").read_text()

    assert (
        _heredoc(doc, "cat > legacy/documents.rules <<'EOF'") == LEGACY_POLICIES["documents.rules"]
    )
    assert _heredoc(doc, "cat > legacy/expenses.json <<'EOF'") == LEGACY_POLICIES["expenses.json"]
    assert "printf 'POLICY broken\\nRULE r WHEN user.role === THEN ALLOW\\n'" in doc
    faulty = _heredoc(doc, "cat > documents-v2.rego <<EOF").replace("$HASH", HASH)
    assert faulty == FAULTY_DOCUMENTS
