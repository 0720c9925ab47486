"""The decision_log_import kind on the real database, driven through the job port: CSV with bad
rows, repeats and conflicts; the schema mapping; JSON Lines; a PostgreSQL query; per-tenant
keys; a crash mid-import and the resume, counts and rows exact."""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import uuid4

import psycopg
import pytest
from psycopg.conninfo import make_conninfo

from api.bootstrap import System
from commands.decision_import.kind import CONFLICTS_LISTED, DecisionImportKind
from commands.migration_kinds import JobSource
from domain.decision_import.errors import SourceUnreadable
from domain.decision_import.record import imported_decision
from domain.errors import ConcurrentModification, ValidationFailed
from domain.registry.decision_log import input_digest
from infra.postgres import decision_import_store
from infra.postgres.decision_import_store import PostgresDecisionImportStore
from tests.integration.decision_import.conftest import (
    HASH,
    csv_text,
    imported,
    job,
    row,
    run,
    write_source,
)

pytestmark = pytest.mark.postgres


def _fields(error: ValidationFailed) -> list[str]:
    return [problem["field"] for problem in error.details["fields"]]


def test_a_csv_with_bad_rows_repeats_and_conflicts_is_imported_and_reported_exactly(
    kind: DecisionImportKind, tmp_path: Path, admin_conn: psycopg.Connection[Any]
) -> None:
    rows = [
        row(1),
        row(2, decision="deny", reason="no clearance"),
        row(3, timestamp="yesterday", decision="maybe"),  # row 3: two bad fields
        row(1),  # row 4: the same decision again: skipped
        row(2, decision="allow"),  # row 5: D-2 again, another outcome: a conflict
        row(6, decision_id="", principal=""),  # row 6: no principal
        row(7, decision_id=""),  # keyed by its request and outcome
        row(7, decision_id=""),  # row 8: the same request and outcome: skipped
        row(7, decision_id="", reason="another reason"),  # row 9: same key, other content
        row(10, context="{not json"),  # row 10
        row(11, latency_ms="", reason="", policy_id="", context=""),  # optional fields empty
    ]
    source = write_source(tmp_path, "legacy.csv", csv_text(rows))
    context = job(kind, {"batch_size": 5}, source, tmp_path)

    result = run(kind, context)

    assert result.total == 11
    assert [o.processed for o in result.outcomes] == [5, 10, 11]
    summary = kind.report(context, result.last.summary)
    assert {k: summary[k] for k in ("rows", "imported", "skipped_duplicates", "conflicts")} == {
        "rows": 11,
        "imported": 4,
        "skipped_duplicates": 2,
        "conflicts": 2,
    }
    assert summary["invalid_rows"] == 3
    assert summary["constitutional_hash"] == HASH
    listed = summary["conflicts_listed"]
    assert [(c["row"], c["decision_id"], c["conflicts_with"]) for c in listed] == [
        (5, "D-2", "row 2"),
        (9, None, "row 7"),
    ]
    failed = {item.item: item for item in result.failed}
    assert sorted(failed) == ["row 10", "row 3", "row 5", "row 6", "row 9"]
    assert "timestamp: not an ISO 8601 time" in failed["row 3"].error
    assert "decision: must be allow or deny" in failed["row 3"].error
    assert failed["row 6"].error == "principal: is required"
    assert failed["row 10"].error == "context: not valid JSON"
    assert failed["row 5"].error == "conflicts with row 2"
    assert all(item.recommendation for item in result.failed)

    stored = imported(admin_conn, context.tenant_id)
    assert [r["legacy_decision_id"] for r in stored] == ["D-1", "D-2", None, "D-11"]
    first = stored[0]
    assert first["decided_at"] == datetime(2025, 11, 2, 10, 1, tzinfo=UTC)
    assert (first["principal"], first["action"], first["resource"]) == (
        "user1@example.com",
        "read",
        "documents/1",
    )
    assert first["context"] == {"department": "legal", "n": 1}
    assert (first["allow"], first["reason"], first["legacy_policy_id"], first["latency_ms"]) == (
        True,
        "matched rule 7",
        "legacy-docs",
        1.25,
    )
    assert first["constitutional_hash"] == HASH
    assert first["import_job_id"] == context.job_id
    assert first["input_sha256"] == input_digest(
        {
            "principal": "user1@example.com",
            "action": "read",
            "resource": "documents/1",
            "context": {"department": "legal", "n": 1},
        }
    )
    assert (first["policy_id"], first["policy_key"], first["policy_version"]) == (None,) * 3
    assert stored[1]["allow"] is False
    empty = stored[3]
    assert (empty["latency_ms"], empty["reason"], empty["legacy_policy_id"], empty["context"]) == (
        None,
        None,
        None,
        {},
    )


def test_importing_the_same_file_again_skips_every_row(
    kind: DecisionImportKind, tmp_path: Path, admin_conn: psycopg.Connection[Any]
) -> None:
    source = write_source(tmp_path, "again.csv", csv_text([row(n) for n in range(1, 51)]))
    first = job(kind, {"batch_size": 20}, source, tmp_path)
    assert run(kind, first).last.summary["imported"] == 50
    second = job(kind, {}, source, tmp_path, tenant_id=first.tenant_id)
    summary = run(kind, second).last.summary
    assert (summary["imported"], summary["skipped_duplicates"], summary["conflicts"]) == (0, 50, 0)
    rows = imported(admin_conn, first.tenant_id)
    assert len(rows) == 50
    # What the second import checked its keys against: each imported row's key and content, once.
    keys = admin_conn.execute(
        "SELECT dedup_key, content_sha256 FROM decision_import_keys WHERE tenant_id = %s",
        [first.tenant_id],
    ).fetchall()
    assert sorted(keys) == sorted((r["dedup_key"], r["content_sha256"]) for r in rows)


def test_keys_are_per_tenant_and_each_tenant_reads_only_its_own(
    system: System, kind: DecisionImportKind, tmp_path: Path
) -> None:
    source = write_source(tmp_path, "shared.csv", csv_text([row(n) for n in range(1, 6)]))
    a = job(kind, {}, source, tmp_path)
    b = job(kind, {}, source, tmp_path)
    assert run(kind, a).last.summary["imported"] == 5
    assert run(kind, b).last.summary["imported"] == 5  # the same legacy ids, another tenant
    with psycopg.connect(system.app_conninfo, autocommit=True) as conn:
        for tenant in (a.tenant_id, b.tenant_id):
            with conn.transaction():
                conn.execute("SELECT set_config('app.current_tenant_id', %s, true)", [str(tenant)])
                seen = conn.execute(
                    "SELECT DISTINCT tenant_id FROM decision_logs WHERE origin = 'imported'"
                ).fetchall()
                progress = conn.execute("SELECT job_id FROM decision_import_progress").fetchall()
                keys = conn.execute(
                    "SELECT DISTINCT tenant_id, count(*) FROM decision_import_keys GROUP BY 1"
                ).fetchall()
            assert seen == [(tenant,)]
            assert keys == [(tenant, 5)]
            assert progress == [(a.job_id if tenant == a.tenant_id else b.job_id,)]


def test_the_importer_may_add_keys_but_never_change_or_remove_one(
    system: System, kind: DecisionImportKind, tmp_path: Path
) -> None:
    source = write_source(tmp_path, "kept.csv", csv_text([row(1)]))
    context = job(kind, {}, source, tmp_path)
    assert run(kind, context).last.summary["imported"] == 1
    with psycopg.connect(system.projector_conninfo, autocommit=True) as conn:
        for statement in (
            "UPDATE decision_import_keys SET content_sha256 = dedup_key",
            "DELETE FROM decision_import_keys",
        ):
            with conn.transaction():
                conn.execute(
                    "SELECT set_config('app.current_tenant_id', %s, true)", [str(context.tenant_id)]
                )
                with pytest.raises(psycopg.errors.InsufficientPrivilege):
                    conn.execute(statement)


def test_the_schema_mapping_renames_legacy_columns(
    kind: DecisionImportKind, tmp_path: Path, admin_conn: psycopg.Connection[Any]
) -> None:
    legacy = {
        "id": "decision_id",
        "when": "timestamp",
        "subject": "principal",
        "verb": "action",
        "object": "resource",
        "effect": "decision",
    }
    rows = [
        {"id": "L-1", "when": "2025-10-01 08:00:00", "subject": "ann", "verb": "get",
         "object": "/a", "effect": "DENY", "decision": "allow", "extra": "ignored"},
    ]  # fmt: skip
    header = ["id", "when", "subject", "verb", "object", "effect", "decision", "extra"]
    source = write_source(tmp_path, "mapped.csv", csv_text(rows, header))
    context = job(kind, {"column_mapping": legacy}, source, tmp_path)
    assert run(kind, context).last.summary["imported"] == 1
    stored = imported(admin_conn, context.tenant_id)[0]
    assert (stored["legacy_decision_id"], stored["principal"], stored["allow"]) == (
        "L-1",
        "ann",
        False,  # the mapped column wins over one that has the field's own name
    )
    assert stored["decided_at"] == datetime(2025, 10, 1, 8, tzinfo=UTC)  # no offset: UTC


def test_json_lines_are_imported_with_line_numbers(
    kind: DecisionImportKind, tmp_path: Path, admin_conn: psycopg.Connection[Any]
) -> None:
    good = {
        "decision_id": "J-1",
        "timestamp": "2025-09-09T09:09:09.123456+02:00",
        "principal": "bob",
        "action": "delete",
        "resource": "db/users",
        "context": {"ip": "10.0.0.1", "tags": ["a", "b"]},
        "decision": "deny",
        "latency_ms": 3,
    }
    lines = [
        json.dumps(good),
        "",
        "[1, 2]",
        "{broken",
        json.dumps({**good, "decision_id": "J-2", "decision": True, "latency_ms": -1}),
        json.dumps({**good, "decision_id": "J-3", "decision": True}),
    ]
    source = write_source(tmp_path, "legacy.jsonl", "\n".join(lines) + "\n")
    context = job(kind, {}, source, tmp_path)
    result = run(kind, context)
    assert result.total == 5
    assert {(item.item, item.error) for item in result.failed} == {
        ("row 3", "is not a JSON object"),
        ("row 4", "is not valid JSON"),
        ("row 5", "latency_ms: must be a finite number of milliseconds, at least 0"),
    }
    stored = imported(admin_conn, context.tenant_id)
    assert [(r["legacy_decision_id"], r["allow"]) for r in stored] == [
        ("J-1", False),
        ("J-3", True),
    ]
    assert stored[0]["decided_at"] == datetime(2025, 9, 9, 7, 9, 9, 123456, tzinfo=UTC)
    assert stored[0]["context"] == {"ip": "10.0.0.1", "tags": ["a", "b"]}


def test_parameters_are_checked_all_at_once(kind: DecisionImportKind, tmp_path: Path) -> None:
    source = write_source(tmp_path, "x.csv", csv_text([row(1)]))
    with pytest.raises(ValidationFailed) as caught:
        kind.validate(
            {
                "format": "xml",
                "batch_size": 0,
                "column_mapping": {"who": "user"},
                "delimiter": ";;",
                "colum_mapping": {},
            },
            source,
        )
    assert sorted(_fields(caught.value)) == [
        "batch_size",
        "colum_mapping",
        "column_mapping",
        "delimiter",
        "format",
    ]
    with pytest.raises(ValidationFailed) as missing:
        kind.validate({}, None)
    assert _fields(missing.value) == ["format"]
    with pytest.raises(ValidationFailed) as no_file:
        kind.validate({"format": "csv"}, None)
    assert _fields(no_file.value) == ["source"]


def test_a_csv_without_the_required_columns_is_refused_naming_them(
    kind: DecisionImportKind, tmp_path: Path
) -> None:
    source = write_source(tmp_path, "thin.csv", "decision_id,timestamp,who\nD-1,2025-01-01,x\n")
    with pytest.raises(ValidationFailed) as caught:
        kind.validate({}, source)
    [problem] = caught.value.details["fields"]
    assert problem["field"] == "source"
    assert "principal, action, resource, decision" in problem["message"]
    for name in ("absent.csv", "absent.jsonl"):
        gone = JobSource(path=tmp_path / name, filename=name)
        with pytest.raises(ValidationFailed) as unreadable:
            kind.validate({}, gone)
        assert _fields(unreadable.value) == ["source"]


def test_a_crash_mid_import_resumes_from_the_last_committed_batch_exactly(
    monkeypatch: pytest.MonkeyPatch,
    system: System,
    kind: DecisionImportKind,
    tmp_path: Path,
    admin_conn: psycopg.Connection[Any],
) -> None:
    rows = [row(n) for n in range(1, 1001)]
    rows[149] = row(150, timestamp="not a time")
    rows[249] = row(250, decision="maybe")  # in the batch whose progress the runner will miss
    rows[700] = row(3)  # a repeat of row 3, in a later batch
    rows[820] = row(5, decision="deny")  # a conflict with row 5
    source = write_source(tmp_path, "big.csv", csv_text(rows))
    context = job(kind, {"batch_size": 100}, source, tmp_path)
    first = run(kind, context, batches=3)
    assert first.last.processed == 300

    # The worker dies inside the fourth batch, with part of its rows sent to the database.
    class Dies(Exception):
        pass

    class DyingStore(PostgresDecisionImportStore):
        @contextmanager
        def batch(self, *args: Any, **kwargs: Any) -> Iterator[Any]:
            with super().batch(*args, **kwargs) as tx:
                real_stage = tx.stage

                def two_then_die(chunks: Iterable[bytes]) -> Iterator[bytes]:
                    yield from itertools.islice(chunks, 2)
                    raise Dies

                tx.stage = lambda chunks: real_stage(two_then_die(chunks))  # type: ignore[method-assign]
                yield tx

    monkeypatch.setattr(decision_import_store, "COPY_ROWS", 30)
    dying = DecisionImportKind(lambda: DyingStore(system.projector_conninfo), kind._query_source)
    cursor = dying.open(replace(context, checkpoint=first.last.checkpoint))
    with pytest.raises(Dies):
        cursor.next_batch()
    cursor.close()
    assert len(imported(admin_conn, context.tenant_id)) == 298  # the fourth batch rolled back
    with psycopg.connect(system.projector_conninfo) as conn:  # and left no lock behind
        assert conn.execute(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'"
        ).fetchone() == (0,)

    # A new claim: the runner's checkpoint is that of the last progress it recorded (batch 2).
    reclaimed = job(
        kind,
        context.parameters,
        source,
        tmp_path,
        tenant_id=context.tenant_id,
        job_id=context.job_id,
        checkpoint=first.outcomes[1].checkpoint,
    )
    resumed = run(kind, reclaimed)
    assert resumed.outcomes[0].processed == 300  # batch 3's progress, which the runner missed
    assert [f.item for f in resumed.outcomes[0].failed] == ["row 250"]  # and its failed item
    assert [o.processed for o in resumed.outcomes[1:]] == list(range(400, 1001, 100))
    summary = resumed.last.summary
    assert (summary["rows"], summary["imported"], summary["invalid_rows"]) == (1000, 996, 2)
    assert (summary["skipped_duplicates"], summary["conflicts"]) == (1, 1)
    assert summary["conflicts_listed"][0]["row"] == 821
    assert summary["failed_items"] == 3  # the runner's count
    assert "batch_failures" not in summary
    stored = imported(admin_conn, context.tenant_id)
    assert len(stored) == 996
    assert len({r["dedup_key"] for r in stored}) == 996

    again = run(kind, reclaimed)  # a claim after the end: nothing more, nothing counted twice
    assert [o.processed for o in again.outcomes] == [1000]
    assert again.last.summary == summary


def test_a_second_worker_on_the_same_job_cannot_run_a_batch_twice(
    kind: DecisionImportKind, tmp_path: Path, admin_conn: psycopg.Connection[Any]
) -> None:
    source = write_source(tmp_path, "twice.csv", csv_text([row(n) for n in range(1, 21)]))
    context = job(kind, {"batch_size": 10}, source, tmp_path)
    one, two = kind.open(context), kind.open(context)
    try:
        assert one.next_batch() is not None
        with pytest.raises(ConcurrentModification):
            two.next_batch()
    finally:
        one.close()
        two.close()
    assert len(imported(admin_conn, context.tenant_id)) == 10


def test_a_batch_ended_without_its_progress_commits_nothing(
    system: System, admin_conn: psycopg.Connection[Any]
) -> None:
    store = PostgresDecisionImportStore(system.projector_conninfo)
    tenant_id, job_id = uuid4(), uuid4()
    chunk = store.encoded(tenant_id, [imported_decision(row(1), HASH)])

    def settled_without_progress() -> None:
        with store.batch(tenant_id, job_id, 0) as tx:
            tx.stage([chunk])
            assert tx.settle() == {}

    try:
        with pytest.raises(RuntimeError):
            settled_without_progress()
        assert store.progress(tenant_id, job_id) is None  # the same connection goes on
    finally:
        store.close()
    assert imported(admin_conn, tenant_id) == []


def test_conflicts_listed_stop_at_the_limit_while_all_are_counted(
    kind: DecisionImportKind, tmp_path: Path
) -> None:
    rows = [row(n) for n in range(1, 31)] + [row(n, decision="deny") for n in range(1, 31)]
    source = write_source(tmp_path, "conflicts.csv", csv_text(rows))
    summary = run(kind, job(kind, {"batch_size": 7}, source, tmp_path)).last.summary
    assert summary["conflicts"] == 30
    assert [c["row"] for c in summary["conflicts_listed"]] == list(range(31, 31 + CONFLICTS_LISTED))


@pytest.fixture
def legacy_table(admin_conn: psycopg.Connection[Any], unique: str) -> str:
    name = f"legacy_decisions_{unique}"
    admin_conn.execute(
        f"CREATE TABLE {name} (id TEXT, at TIMESTAMPTZ, who TEXT, action TEXT, resource TEXT, "
        "context JSONB, allowed BOOLEAN, reason TEXT, policy_id TEXT, latency NUMERIC)"
    )
    admin_conn.execute(
        f"INSERT INTO {name} SELECT 'Q-' || n, timestamptz '2025-06-01 00:00Z' + n * interval "
        "'1 minute', 'user' || n, 'read', 'files/' || n, jsonb_build_object('n', n), n % 3 <> 0, "
        "NULL, 'p1', n / 4.0 FROM generate_series(1, 250) AS n"
    )
    return name


def test_a_postgresql_query_is_a_source(
    kind: DecisionImportKind,
    tmp_path: Path,
    pg_admin_url: str,
    legacy_table: str,
    admin_conn: psycopg.Connection[Any],
) -> None:
    parameters = {
        "format": "postgresql",
        "conninfo": pg_admin_url,
        "query": f"SELECT * FROM {legacy_table} ORDER BY id;",
        "column_mapping": {"id": "decision_id", "at": "timestamp", "who": "principal",
                           "allowed": "decision", "latency": "latency_ms"},
        "batch_size": 100,
    }  # fmt: skip
    context = job(kind, parameters, None, tmp_path)
    first = run(kind, context, batches=1)
    assert (first.total, first.last.processed) == (250, 100)
    resumed = run(kind, context)  # a new cursor resumes at row 101
    assert resumed.last.summary["imported"] == 250
    stored = imported(admin_conn, context.tenant_id)
    assert len({r["legacy_decision_id"] for r in stored}) == 250
    q9 = next(r for r in stored if r["legacy_decision_id"] == "Q-9")
    assert (q9["allow"], q9["latency_ms"], q9["context"]) == (False, 2.25, {"n": 9})


def test_postgresql_failures_name_the_parameter_and_never_the_password(
    kind: DecisionImportKind, tmp_path: Path, pg_admin_url: str, unique: str
) -> None:
    secret = f"pw-{unique}-secret"
    closed = make_conninfo(
        "host=127.0.0.1 port=1 dbname=legacy connect_timeout=2", user="x", password=secret
    )
    as_uri = f"postgresql://x:{secret}@127.0.0.1:1/legacy?connect_timeout=2"
    for conninfo in (closed, as_uri, f"{as_uri}&sslmode=bogus"):
        with pytest.raises(ValidationFailed) as unreachable:
            kind.validate({"format": "postgresql", "conninfo": conninfo, "query": "SELECT 1"}, None)
        assert _fields(unreachable.value) == ["conninfo"]
        assert secret not in json.dumps([unreachable.value.message, unreachable.value.details])

    with_password = make_conninfo(pg_admin_url, password=secret)
    with pytest.raises(ValidationFailed) as bad_query:
        kind.validate(
            {"format": "postgresql", "conninfo": with_password, "query": f"SELEC '{secret}'"},
            None,
        )
    assert _fields(bad_query.value) == ["query"]
    assert secret not in json.dumps([bad_query.value.message, bad_query.value.details])
    assert secret not in repr(kind._query_source(with_password, "SELECT 1", {}))

    with pytest.raises(ValidationFailed) as writes:
        kind.validate(
            {"format": "postgresql", "conninfo": pg_admin_url,
             "query": "SELECT 1); CREATE TABLE escaped (x int); SELECT (1"},
            None,
        )  # fmt: skip
    assert _fields(writes.value) == ["query"]


def test_an_unreadable_file_fails_the_job_with_a_clear_error(
    kind: DecisionImportKind, tmp_path: Path
) -> None:
    path = tmp_path / "latin1.csv"
    good = csv_text([row(n) for n in range(1, 501)]).encode()  # past the first block read
    path.write_bytes(good + "D-9,2025-01-01,Jos\xe9\n".encode("latin-1"))
    context = job(kind, {}, JobSource(path=path, filename=path.name), tmp_path)
    with pytest.raises(SourceUnreadable) as caught:
        run(kind, context)
    assert "not UTF-8" in caught.value.message


def test_a_live_row_still_needs_its_policy_version(
    admin_conn: psycopg.Connection[Any],
) -> None:
    with pytest.raises(psycopg.errors.CheckViolation):
        admin_conn.execute(
            "INSERT INTO decision_logs (decision_id, tenant_id, input_sha256, allow, deny, "
            "obligations, latency_ms, principal, constitutional_hash, decided_at) VALUES "
            "(gen_random_uuid(), %s, 'x', true, '[]', '[]', 0, 'x', 'x', now())",
            [uuid4()],
        )


def test_values_that_copy_must_escape_land_exactly(
    kind: DecisionImportKind, tmp_path: Path, admin_conn: psycopg.Connection[Any]
) -> None:
    """A chunk of plain rows goes as it is built; one value holding a tab, a line break, a
    carriage return or a backslash makes its chunk escaped: either way the log keeps each value
    as the source gave it."""
    odd = {
        "decision_id": "E-1\\x",
        "timestamp": "2025-09-09T09:09:09Z",
        "principal": "tab\there",
        "action": "line\nbreak",
        "resource": "carriage\rreturn",
        "context": {"path": "C:\\temp\\x", "tab": "a\tb"},
        "decision": "allow",
        "reason": "back\\slash \\N",
        "policy_id": "p\\t1",
    }
    plain = [
        {**odd, "decision_id": f"P-{n}", "principal": f"p{n}", "action": "read",
         "resource": "r", "context": {"n": n}, "reason": None, "policy_id": None}
        for n in range(3)
    ]  # fmt: skip
    lines = [json.dumps(record) for record in (*plain, odd)]
    source = write_source(tmp_path, "odd.jsonl", "\n".join(lines) + "\n")
    context = job(kind, {"batch_size": 3}, source, tmp_path)  # a plain batch, then the odd one
    result = run(kind, context)
    assert result.failed == []
    stored = {r["legacy_decision_id"]: r for r in imported(admin_conn, context.tenant_id)}
    assert set(stored) == {"P-0", "P-1", "P-2", "E-1\\x"}
    kept = stored["E-1\\x"]
    assert (kept["principal"], kept["action"], kept["resource"]) == (
        "tab\there",
        "line\nbreak",
        "carriage\rreturn",
    )
    assert (kept["reason"], kept["legacy_policy_id"]) == ("back\\slash \\N", "p\\t1")
    assert kept["context"] == {"path": "C:\\temp\\x", "tab": "a\tb"}
    assert (stored["P-1"]["reason"], stored["P-1"]["legacy_policy_id"]) == (None, None)
    assert stored["P-2"]["context"] == {"n": 2}
