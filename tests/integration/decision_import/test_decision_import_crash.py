"""A batch commits without waiting for the disk (`synchronous_commit` off): a server crash may
lose its commit, and then loses its rows and the job's progress together, and the job redoes the
batch exactly. Checked on a server of its own, crashed for real (its WAL writer killed: the
server ends every session and recovers from the WAL on disk, as after a power cut), with the WAL
writer held still before so the last batch's commit is only in memory when the server dies."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import psycopg
import pytest

from commands.decision_import.kind import DecisionImportKind
from infra.postgres.decision_import_store import PostgresDecisionImportStore
from infra.postgres.embedded import EmbeddedPostgres
from infra.postgres.legacy_decisions import PostgresQuerySource
from infra.postgres.migrate import migrate
from tests.integration.decision_import.conftest import (
    HASH,
    csv_text,
    imported,
    job,
    row,
    run,
    write_source,
)
from tests.peers.scratch import scratch_dir


@pytest.fixture
def crashable_url() -> Iterator[str]:
    """The superuser URL of a migrated server of the test's own, its WAL flushed only by a
    synchronous commit or the WAL writer (no background writer's page, no autovacuum's commit)."""
    with scratch_dir("acgs-test-import-crash-") as data_dir:
        server = EmbeddedPostgres(data_dir)
        try:
            url = server.start()
            migrate(url)
            with psycopg.connect(url, autocommit=True) as conn:
                conn.execute("ALTER SYSTEM SET bgwriter_lru_maxpages = 0")
                conn.execute("ALTER SYSTEM SET autovacuum = off")
                conn.execute("SELECT pg_reload_conf()")
            yield url
        finally:
            server.stop()


def _wal_writer(url: str) -> int:
    with psycopg.connect(url) as conn:
        found = conn.execute(
            "SELECT pid FROM pg_stat_activity WHERE backend_type = 'walwriter'"
        ).fetchone()
    assert found is not None
    return int(found[0])


def _crash(url: str, wal_writer: int) -> None:
    """Kill the WAL writer: the server ends every session and recovers from the WAL on disk."""
    os.kill(wal_writer, signal.SIGKILL)
    deadline = time.monotonic() + 30
    while True:
        try:
            with psycopg.connect(url, connect_timeout=2) as conn:
                if conn.execute("SELECT pg_is_in_recovery()").fetchone() == (False,):
                    return
        except psycopg.OperationalError:
            if time.monotonic() > deadline:
                raise
        time.sleep(0.2)


def _progress(url: str, job_id: Any) -> int | None:
    with psycopg.connect(url) as conn:
        found = conn.execute(
            "SELECT rows_through FROM decision_import_progress WHERE job_id = %s", [job_id]
        ).fetchone()
    return None if found is None else int(found[0])


def test_a_commit_lost_in_a_server_crash_loses_the_batch_whole_and_the_job_redoes_it(
    crashable_url: str, tmp_path: Path
) -> None:
    kind = DecisionImportKind(
        lambda: PostgresDecisionImportStore(crashable_url), PostgresQuerySource, HASH
    )
    rows = [row(n) for n in range(1, 31)]
    rows[14] = row(15, decision="maybe")  # an invalid row in the batch that will be lost
    rows[16] = row(2)  # a repeat of row 2, in the same batch
    source = write_source(tmp_path, "crash.csv", csv_text(rows))
    context = job(kind, {"batch_size": 10}, source, tmp_path)

    first = run(kind, context, batches=1)
    # The runner records the batch: a synchronous commit, which flushes the WAL up to it.
    with psycopg.connect(crashable_url) as conn:
        conn.execute("CREATE TABLE runner_record (rows_through int)")
        conn.execute("INSERT INTO runner_record VALUES (%s)", [first.last.processed])
    # The WAL writer is held still: the next commit stays in the server's memory.
    wal_writer = _wal_writer(crashable_url)
    os.kill(wal_writer, signal.SIGSTOP)
    # (The importer's session stays open: its end would drop its staging table, a commit that
    # waits for the disk.)
    cursor = kind.open(replace(context, checkpoint=first.last.checkpoint))
    try:
        second = cursor.next_batch()
        assert second is not None
        assert second.processed == 20
        assert _progress(crashable_url, context.job_id) == 20
        _crash(crashable_url, wal_writer)
    finally:
        cursor.close()

    # The second batch's commit never reached the disk: its rows and its progress are gone
    # together; the first batch, flushed by the runner's commit, stayed.
    assert _progress(crashable_url, context.job_id) == 10
    with psycopg.connect(crashable_url) as conn:
        assert len(imported(conn, context.tenant_id)) == 10
        assert conn.execute("SELECT rows_through FROM runner_record").fetchone() == (10,)

    resumed = run(kind, replace(context, checkpoint=first.last.checkpoint))
    assert [o.processed for o in resumed.outcomes] == [20, 30]
    assert [f.item for f in resumed.outcomes[0].failed] == ["row 15"]
    summary = resumed.last.summary
    assert (summary["rows"], summary["imported"], summary["skipped_duplicates"]) == (30, 28, 1)
    assert (summary["invalid_rows"], summary["conflicts"]) == (1, 0)
    with psycopg.connect(crashable_url) as conn:
        stored = imported(conn, context.tenant_id)
    assert len(stored) == 28
    assert {r["legacy_decision_id"] for r in stored} == {
        f"D-{n}" for n in range(1, 31) if n not in (15, 17)
    }
