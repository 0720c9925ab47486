"""Decision import benchmark. Run: `python -m tests.load.bench_decision_import [--rows 200000]`.

A CSV of `--rows` legacy decisions (distinct ids, a JSON context each, every tenth a repeat of
an earlier row) is imported by the `decision_log_import` kind through the job port (open, then
`next_batch` until done: read, check, key, digest and encode each row in the kind's reader
thread, then COPY, look the batch's keys up, insert, progress) into a fresh database. Target:
>= 50,000 rows/s.

The baseline, in the same process and database: a bare COPY of the same rows, already encoded,
into a table like `decision_logs` (same columns and indexes, no row-level security): what the
database alone takes for them. The ratio of the two says what the kind costs on top.

CPU is reported per row for both sides: this process (all its threads) and the database server
(every process of the throwaway cluster, read from /proc), so a figure taken on a loaded machine
still says what each row costs.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import sys
import time
import uuid
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import psycopg

from api.bootstrap import build
from api.settings import Settings
from commands.decision_import.kind import DecisionImportKind
from commands.decision_import.sources import CsvSource
from commands.migration_kinds import JobContext, JobSource
from domain.constitution import DEFAULT_CONSTITUTIONAL_HASH
from domain.decision_import.record import imported_decision
from infra.postgres.decision_import_store import (
    STAGED_COLUMNS,
    PostgresDecisionImportStore,
    copy_text,
)
from infra.postgres.legacy_decisions import PostgresQuerySource
from tests.load.targets import Targets
from tests.peers.postgres import throwaway_postgres
from tests.peers.scratch import scratch_dir

TARGETS = Targets("bench_decision_import")
ROWS_PER_SECOND = 50_000
HASH = DEFAULT_CONSTITUTIONAL_HASH


def write_csv(path: Path, rows: int) -> None:
    header = ["decision_id", "timestamp", "principal", "action", "resource", "context",
              "decision", "reason", "policy_id", "latency_ms"]  # fmt: skip
    with path.open("w", encoding="utf-8", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(header)
        for n in range(rows):
            m = n - 1 if n % 10 == 9 else n  # every tenth row repeats the one before it
            writer.writerow(
                [
                    f"legacy-{m}",
                    f"2025-{1 + m % 12:02d}-{1 + m % 28:02d}T{m % 24:02d}:{m % 60:02d}:00Z",
                    f"user{m % 5000}@example.com",
                    ("read", "write", "delete")[m % 3],
                    f"documents/{m % 20000}",
                    json.dumps({"department": ("legal", "hr", "it")[m % 3], "level": m % 7}),
                    "deny" if m % 4 == 0 else "allow",
                    "rule matched",
                    f"legacy-policy-{m % 50}",
                    f"{(m % 100) / 10:.1f}",
                ]
            )


def _ticks(pid: int) -> tuple[int, int]:
    """(parent pid, user + system clock ticks) of a process."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[1]), int(fields[11]) + int(fields[12])


def server_ticks(postmaster: int) -> dict[int, int]:
    """The clock ticks of CPU each process of the cluster (the postmaster, its children) used."""
    ticks: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parent, used = _ticks(int(entry.name))
            except (OSError, IndexError, ValueError):
                continue  # ended meanwhile
            if parent == postmaster or int(entry.name) == postmaster:
                ticks[int(entry.name)] = used
    return ticks


def server_cpu(postmaster: int, since: dict[int, int]) -> float:
    """Seconds of CPU the cluster used since `since` (a process that ended meanwhile is not
    counted: measure before the sessions measured end)."""
    now = server_ticks(postmaster)
    used = sum(ticks - since.get(pid, 0) for pid, ticks in now.items())
    return used / os.sysconf("SC_CLK_TCK")


def postmaster_of(admin_url: str) -> int:
    with psycopg.connect(admin_url) as conn:  # its backend is read while it lives
        row = conn.execute("SELECT pg_backend_pid()").fetchone()
        assert row is not None
        return _ticks(int(row[0]))[0]


def bare_copy(admin_url: str, path: Path, postmaster: int) -> tuple[int, float]:
    """Rows and seconds of a bare COPY of the file's rows, encoded beforehand."""
    tenant, job_id = uuid.uuid4(), uuid.uuid4()
    source = CsvSource(path, {})
    rows = [imported_decision(r, HASH) for _, r in source.records(0) if not isinstance(r, str)]
    unique = list({r.dedup_key: r for r in rows}.values())
    text = copy_text(unique, tenant)
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute("CREATE TABLE bare_copy (LIKE decision_logs INCLUDING ALL)")
        # What the import's insert puts in for the whole batch, as the columns' defaults.
        conn.execute(
            f"ALTER TABLE bare_copy ALTER tenant_id SET DEFAULT '{tenant}', "
            f"ALTER import_job_id SET DEFAULT '{job_id}', ALTER origin SET DEFAULT 'imported', "
            "ALTER deny SET DEFAULT '[]', ALTER obligations SET DEFAULT '[]'"
        )
        started, server_started = time.perf_counter(), server_ticks(postmaster)
        with (
            conn.transaction(),
            conn.cursor() as cur,
            cur.copy(f"COPY bare_copy ({STAGED_COLUMNS}) FROM STDIN") as copy,
        ):
            for start in range(0, len(text), 1 << 20):
                copy.write(text[start : start + (1 << 20)])
        seconds = time.perf_counter() - started
        used = server_cpu(postmaster, server_started)
        per_row = 1e6 * used / len(unique)
        print(f"  bare COPY, CPU of the database: {used:.2f} s = {per_row:.1f} us/row")
        conn.execute("DROP TABLE bare_copy")
    return len(unique), seconds


def through_the_kind(
    kind: DecisionImportKind, path: Path, work: Path, postmaster: int
) -> tuple[int, float]:
    source = JobSource(path=path, filename=path.name)
    context = JobContext(
        tenant_id=uuid.uuid4(),
        job_id=uuid.uuid4(),
        kind=kind.name,
        parameters=kind.validate({}, source),
        source=source,
        requested_by="bench",
        checkpoint=None,
        work_dir=work,
    )
    started, cpu_started = time.perf_counter(), time.process_time()
    server_started = server_ticks(postmaster)
    cursor = kind.open(context)
    batch_seconds: list[float] = []
    try:
        last = None
        while True:
            batch_started = time.perf_counter()
            outcome = cursor.next_batch()
            if outcome is None:
                break
            batch_seconds.append(time.perf_counter() - batch_started)
            last = outcome
        server = server_cpu(postmaster, server_started)  # before the importer's session ends
    finally:
        cursor.close()
    seconds = time.perf_counter() - started
    cpu = time.process_time() - cpu_started
    tenth = max(1, len(batch_seconds) // 10)
    first, final = batch_seconds[:tenth], batch_seconds[-tenth:]
    print(
        f"  {len(batch_seconds)} batches; mean batch of the first tenth "
        f"{1000 * sum(first) / len(first):.0f} ms, "
        f"of the last {1000 * sum(final) / len(final):.0f} ms"
    )
    assert last is not None
    summary = last.summary
    print(
        f"  rows {summary['rows']}, imported {summary['imported']}, "
        f"skipped {summary['skipped_duplicates']}, conflicts {summary['conflicts']}, "
        f"invalid {summary['invalid_rows']}"
    )
    rows = int(summary["rows"])
    print(f"  CPU of this process (all its threads): {cpu:.2f} s = {1e6 * cpu / rows:.1f} us/row")
    print(f"  CPU of the database: {server:.2f} s = {1e6 * server / rows:.1f} us/row")
    return rows, seconds


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=200_000)
    args = parser.parse_args()
    with (
        scratch_dir("acgs-bench-import-") as data_dir,
        throwaway_postgres(data_dir / "pg") as (
            _,
            admin_url,
        ),
    ):
        settings = Settings.from_env(
            {
                "ACGS_DATABASE_URL": admin_url,
                "ACGS_DATA_DIR": str(data_dir / "data"),
                "ACGS_LOG_LEVEL": "WARNING",
            }
        )
        system = build(settings, apply_migrations=False)
        try:
            path = data_dir / "legacy.csv"
            write_csv(path, args.rows)
            kind = DecisionImportKind(
                lambda: PostgresDecisionImportStore(system.projector_conninfo),
                PostgresQuerySource,
                HASH,
            )
            print(f"load average before: {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs")
            postmaster = postmaster_of(admin_url)
            bare_rows, bare_seconds = bare_copy(admin_url, path, postmaster)
            rows, seconds = through_the_kind(kind, path, data_dir, postmaster)
            bare_rate, rate = bare_rows / bare_seconds, rows / seconds
            verdict = TARGETS.check("import >= 50,000 rows/s", rate >= ROWS_PER_SECOND)
            print(f"bare COPY: {bare_rows} rows in {bare_seconds:.2f} s = {bare_rate:,.0f} rows/s")
            print(
                f"import: {rows} rows in {seconds:.2f} s = {rate:,.0f} rows/s "
                f"(target >= {ROWS_PER_SECOND:,}) {verdict}; "
                f"ratio to bare COPY {rate / bare_rate:.2f}"
            )
            print(f"load average after: {os.getloadavg()[0]:.2f}")
        finally:
            system.close()
    return TARGETS.exit_status()


if __name__ == "__main__":
    sys.exit(main())
