"""Imported legacy decisions and each import's progress, in one transaction per batch.

What each row says is copied (COPY, text format, built by `encoded` like the live writer's: a
value adapted by the driver costs more than the rest of the row; the kind encodes the next batch
in its reader thread while this one is written) into a temporary table (created once for each
connection, emptied at each commit); one statement then adds the batch's keys to the tenant's
keys (`decision_import_keys`) and inserts the rows whose key it added into `decision_logs`
(PostgreSQL refuses COPY into a table with row-level security), with what is the same for the
whole batch (tenant, job, origin). A batch takes a transaction-scoped advisory lock per tenant
first, so two imports of one tenant never both add a key the other is adding; the job's progress
row is checked against where the batch starts and moved on in the same transaction, so a batch
runs once even when two workers hold the job. The progress and the commit are sent together (one
round trip: the kind's reader thread is at work meanwhile, and each answer waits until this
thread gets Python's global lock back).

The importer connects as the decision-log writer (acgs2_projector, which may only insert and
read decision rows, and add and read import keys) and scopes each transaction to the job's
tenant, which is all the progress and key tables' row-level security lets it see.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any
from uuid import UUID

import msgspec
import psycopg

from domain.decision_import.record import ImportedDecision, decision_id_hex
from domain.errors import ConcurrentModification
from infra.postgres.decision_log_store import _escaped_json, _text

_NULL = "\\N"
_LOCK_CLASS = 0x0D1C  # the advisory-lock class of decision imports (one lock per tenant in it)
_json = msgspec.json.Encoder().encode
_COLUMNS = (
    "decision_id, tenant_id, input_sha256, allow, deny, obligations, latency_ms, principal, "
    "constitutional_hash, decided_at, origin, action, resource, context, reason, "
    "legacy_policy_id, legacy_decision_id, import_job_id, dedup_key, content_sha256"
)
# What a row says, sent with COPY; the rest of a decision row is the same for the whole batch
# (its tenant, its job, `origin`, no deny reasons or obligations) and is put in by the insert.
STAGED_COLUMNS = (
    "decision_id, input_sha256, allow, latency_ms, principal, constitutional_hash, decided_at, "
    "action, resource, context, reason, legacy_policy_id, legacy_decision_id, dedup_key, "
    "content_sha256"
)
# The staged values the database takes longest to read (the context's JSON, the time, the latency)
# are staged as text and read by the insert that adds them to the log: the COPY, during which the
# kind does not yet read the next batch, stays short, and the reading moves into the insert,
# during which it does.
_STAGE = (
    "CREATE TEMP TABLE IF NOT EXISTS decision_import_rows (decision_id UUID, "
    "input_sha256 CHAR(64), allow BOOLEAN, latency_ms TEXT, principal VARCHAR(255), "
    "constitutional_hash VARCHAR(16), decided_at TEXT, action TEXT, resource TEXT, "
    "context TEXT, reason TEXT, legacy_policy_id TEXT, legacy_decision_id TEXT, "
    'dedup_key CHAR(64) COLLATE "C", content_sha256 CHAR(64)) ON COMMIT DELETE ROWS'
)
_COPY = f"COPY decision_import_rows ({STAGED_COLUMNS}) FROM STDIN"
# The batch's keys are added to the tenant's keys (`decision_import_keys`, primary key (tenant_id,
# dedup_key)) with ON CONFLICT DO NOTHING: inserting a key is also looking it up, one descent of
# one index, whatever the number of the log's partitions. The staged rows whose key was added are
# inserted into the decision log in the same statement; the keys not added (imported before) are
# returned. Both joins with the added keys are on equality of the whole batch (hashed). The keys
# go in in key order and the rows in decision_id order (the order of each one's primary key): a
# batch's insertions then walk each index from one end to the other instead of at random (about
# a tenth less database CPU for a batch, sorting included). The rows are staged in that order
# (`in_log_order`, in the kind's reader thread) and a scan of the staging table, filled by one
# COPY since it was emptied, returns them in it: the database does not sort them again (about
# 1 of its 13 us a row; were the order lost, only the locality would be).
_SETTLE = (
    "WITH added AS (INSERT INTO decision_import_keys "  # noqa: S608 - fixed column list, no input  # nosec B608
    "(tenant_id, dedup_key, content_sha256) "
    "SELECT %(tenant)s, dedup_key, content_sha256 FROM decision_import_rows ORDER BY dedup_key "
    "ON CONFLICT DO NOTHING RETURNING dedup_key), "
    f"logged AS (INSERT INTO decision_logs ({_COLUMNS}) "
    "SELECT decision_id, %(tenant)s, input_sha256, allow, '[]'::jsonb, '[]'::jsonb, "
    "latency_ms::float8, principal, constitutional_hash, decided_at::timestamptz, 'imported', "
    "action, resource, context::jsonb, reason, "
    "legacy_policy_id, legacy_decision_id, %(job)s, dedup_key, content_sha256 "
    "FROM decision_import_rows s WHERE EXISTS "
    "(SELECT FROM added a WHERE a.dedup_key = s.dedup_key)) "
    "SELECT s.dedup_key FROM decision_import_rows s WHERE NOT EXISTS "
    "(SELECT FROM added a WHERE a.dedup_key = s.dedup_key)"
)
# The content digest of each key imported before (rare but for a file imported again), each
# looked up on its own through the primary key.
_KEPT = (
    "SELECT k.key, d.content_sha256 FROM unnest(%s::text[]) AS k(key) CROSS JOIN LATERAL "
    "(SELECT content_sha256 FROM decision_import_keys "
    'WHERE tenant_id = %s AND dedup_key = k.key COLLATE "C") d'
)
# A batch commits without waiting for its WAL to reach the disk (`synchronous_commit` off, for
# its own transaction only): its rows and the job's progress are one commit, so a commit lost in
# a server crash loses both and the job redoes that batch. The runner's own record of the batch
# is a later, synchronous commit in the same cluster, which flushes the WAL up to it: the runner
# is never ahead of what the database kept.
_SCOPE = (
    "SELECT set_config('app.current_tenant_id', %s, true), "
    "set_config('synchronous_commit', 'off', true), pg_advisory_xact_lock(%s, hashtext(%s))"
)
_PROGRESS = "SELECT rows_through, summary FROM decision_import_progress WHERE job_id = %s"
_SAVE = (
    "INSERT INTO decision_import_progress (job_id, tenant_id, rows_through, summary) "
    "VALUES (%s, %s, %s, %s::jsonb) ON CONFLICT (job_id) DO UPDATE SET "
    "rows_through = EXCLUDED.rows_through, summary = EXCLUDED.summary, updated_at = now()"
)


COPY_ROWS = 500  # rows sent with one write of the COPY
_NO_VALUE = "\x00"  # stands for NULL in a chunk built raw: no value holds a NUL
_TABS = STAGED_COLUMNS.count(",")  # the tabs of one row


def copy_text(rows: Sequence[ImportedDecision], tenant_id: UUID) -> bytes:
    """The rows as COPY text in the order of `STAGED_COLUMNS`.

    The chunk is built first with the values as they are. When it has exactly the tabs and line
    breaks of its rows and no backslash or carriage return, no value needed escaping (the case
    of nearly every chunk) and only the NULL markers are put in; else it is built again with
    each text value escaped."""
    tenant = tenant_id.int
    raw = "".join(
        [
            f"{decision_id_hex(r.dedup_key, tenant)}\t{r.input_sha256}\t"
            f"{'t' if r.allow else 'f'}\t"
            f"{_NO_VALUE if r.latency_ms is None else repr(r.latency_ms)}\t"
            f"{r.principal}\t{r.constitutional_hash}\t{r.decided_text}\t"
            f"{r.action}\t{r.resource}\t{r.context_json}\t"
            f"{_NO_VALUE if r.reason is None else r.reason}\t"
            f"{_NO_VALUE if r.policy_id is None else r.policy_id}\t"
            f"{_NO_VALUE if r.legacy_id is None else r.legacy_id}\t"
            f"{r.dedup_key}\t{r.content_sha256}\n"
            for r in rows
        ]
    )
    if (
        "\\" not in raw
        and "\r" not in raw
        and raw.count("\n") == len(rows)
        and raw.count("\t") == _TABS * len(rows)
    ):
        return raw.replace(_NO_VALUE, _NULL).encode()
    return _escaped_copy_text(rows, tenant)


def in_log_order(chunks: Sequence[bytes]) -> list[bytes]:
    """The chunks' rows in decision_id order, `COPY_ROWS` to a chunk. Each row is one line (a
    line break or a carriage return in a value is escaped) that begins with the row's
    decision_id in 32 hex digits, so the lines sort as the ids do."""
    lines = b"".join(chunks).split(b"\n")
    lines.pop()  # what follows the last line break: nothing
    lines.sort()
    return [
        b"\n".join(lines[start : start + COPY_ROWS]) + b"\n"
        for start in range(0, len(lines), COPY_ROWS)
    ]


def _optional(value: str | None) -> str:
    return _NULL if value is None else _text(value)


def _escaped_copy_text(rows: Sequence[ImportedDecision], tenant: int) -> bytes:
    return "".join(
        [
            f"{decision_id_hex(r.dedup_key, tenant)}\t{r.input_sha256}\t"
            f"{'t' if r.allow else 'f'}\t"
            f"{_NULL if r.latency_ms is None else repr(r.latency_ms)}\t"
            f"{_text(r.principal)}\t{_text(r.constitutional_hash)}\t{r.decided_text}\t"
            f"{_text(r.action)}\t{_text(r.resource)}\t{_escaped_json(r.context_json)}\t"
            f"{_optional(r.reason)}\t{_optional(r.policy_id)}\t{_optional(r.legacy_id)}\t"
            f"{r.dedup_key}\t{r.content_sha256}\n"
            for r in rows
        ]
    ).encode()


class _Batch:
    def __init__(self, cur: psycopg.Cursor[Any], tenant_id: UUID, job_id: UUID) -> None:
        self._cur = cur
        self._tenant_id = tenant_id
        self._job_id = job_id
        self.progress: tuple[int, str] | None = None

    def stage(self, chunks: Iterable[bytes]) -> None:
        with self._cur.copy(_COPY) as copy:  # a failure ends the COPY before it is raised
            for chunk in chunks:
                copy.write(chunk)

    def settle(self) -> Mapping[str, str]:
        settled = self._cur.execute(_SETTLE, {"tenant": self._tenant_id, "job": self._job_id})
        kept = [key for (key,) in settled.fetchall()]
        if not kept:
            return {}
        return dict(self._cur.execute(_KEPT, [kept, self._tenant_id]).fetchall())

    def save_progress(self, rows_through: int, summary: Mapping[str, Any]) -> None:
        self.progress = rows_through, _json(summary).decode()


class PostgresDecisionImportStore:
    def __init__(self, conninfo: str) -> None:
        self.conninfo = conninfo
        self._conn: psycopg.Connection[Any] | None = None

    def encoded(self, tenant_id: UUID, rows: Sequence[ImportedDecision]) -> bytes:
        return copy_text(rows, tenant_id)

    def in_log_order(self, chunks: Sequence[bytes]) -> list[bytes]:
        return in_log_order(chunks)

    def _connection(self) -> psycopg.Connection[Any]:
        if self._conn is None or self._conn.closed:
            self._conn = psycopg.connect(self.conninfo, autocommit=True)
            self._conn.execute(_STAGE)
        return self._conn

    def progress(self, tenant_id: UUID, job_id: UUID) -> tuple[int, dict[str, Any]] | None:
        conn = self._connection()
        with conn.transaction(), conn.cursor() as cur:
            cur.execute("SELECT set_config('app.current_tenant_id', %s, true)", [str(tenant_id)])
            row = cur.execute(_PROGRESS, [job_id]).fetchone()
        return None if row is None else (int(row[0]), dict(row[1]))

    @contextmanager
    def batch(self, tenant_id: UUID, job_id: UUID, rows_from: int) -> Iterator[_Batch]:
        """The batch's transaction, begun and ended by its own statements: its last two, the
        progress and the `COMMIT`, are sent together (one round trip)."""
        conn = self._connection()
        try:
            with conn.cursor() as cur:
                cur.execute("BEGIN")
                cur.execute(_SCOPE, [str(tenant_id), _LOCK_CLASS, str(tenant_id)])
                row = cur.execute(_PROGRESS, [job_id]).fetchone()
                if (0 if row is None else int(row[0])) != rows_from:
                    raise ConcurrentModification(
                        "the import moved on elsewhere: another worker ran this batch",
                        {"job_id": str(job_id)},
                    )
                batch = _Batch(cur, tenant_id, job_id)
                yield batch
                if batch.progress is None:
                    raise RuntimeError("a batch commits with the job's progress")
                with conn.pipeline():
                    cur.execute(_SAVE, [job_id, tenant_id, *batch.progress])
                    cur.execute("COMMIT")
        except psycopg.OperationalError:
            self.close()  # its server session ends, and the transaction with it
            raise
        except BaseException:
            conn.execute("ROLLBACK")
            raise

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None
