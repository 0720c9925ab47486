"""Appends decision records to `decision_logs` (append-only, partitioned by month), as the
projector role, in one transaction per batch: the batch is copied into a temporary table
(COPY, one round trip) and inserted from there, skipping a record already written.

The batch is sent as one block of COPY text built here (`copy_text`), not value by value through
the driver's adapters: the writer shares the API process with the request path, and adapting
fifteen values per row costs it more than the rest of the batch. What repeats from row to row
(the tenant and policy version; the decision and its JSON; the principal) is encoded once and
kept, a few thousand entries at most. The rows are encoded and sent a hundred at a time, the
interpreter yielded in between.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any, Protocol
from uuid import UUID

import msgspec
import psycopg

MAX_REMEMBERED = 4096  # distinct fragments kept per kind (then forgotten all at once)
# Rows encoded between two yields of the interpreter lock: the writer shares the process with
# the request path, which should never wait for more than a few hundred microseconds of it.
CHUNK_ROWS = 100
_json = msgspec.json.Encoder().encode
# COPY's text format: backslash, newline, carriage return and tab are escaped; NULL is \N.
_ESCAPES = str.maketrans({"\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t"})
_NULL = "\\N"


class _Policy(Protocol):
    policy_id: UUID
    policy_key: str
    version: int
    system_wide: bool


class _Decision(Protocol):
    allow: bool
    deny: frozenset[str]
    obligations: frozenset[str]  # each the canonical JSON text of an obligation


_COLUMNS = (
    "decision_id, tenant_id, policy_id, policy_key, policy_version, system_wide, input_sha256, "
    "input, allow, deny, obligations, latency_ms, principal, constitutional_hash, decided_at"
)
_STAGE = (
    "CREATE TEMP TABLE IF NOT EXISTS decision_logs_batch "
    "(LIKE decision_logs INCLUDING DEFAULTS) ON COMMIT DELETE ROWS"
)
_COPY = f"COPY decision_logs_batch ({_COLUMNS}) FROM STDIN"
_INSERT = (
    f"INSERT INTO decision_logs ({_COLUMNS}) SELECT {_COLUMNS} FROM decision_logs_batch "  # noqa: S608 - fixed column list, no input  # nosec B608
    "ON CONFLICT DO NOTHING"
)


def _text(value: str) -> str:
    """A text value escaped for COPY's text format."""
    return value.translate(_ESCAPES)


def _json_text(value: Any) -> str:
    """A JSON value as COPY text."""
    return _escaped_json(_json(value).decode())


def _escaped_json(text: str) -> str:
    """JSON text as COPY text: JSON holds no raw control characters, only `\\` to escape."""
    return text.replace("\\", "\\\\")


class CopyRows:
    """Decision records as COPY text rows, in the column order of `_COLUMNS`."""

    def __init__(self) -> None:
        self._policies: dict[tuple[UUID, UUID, int], str] = {}
        self._decisions: dict[_Decision, str] = {}
        self._principals: dict[tuple[str, str], str] = {}

    def copy_text(self, records: Sequence[Any]) -> bytes:
        return "".join([self._row(r) for r in records]).encode()

    def _row(self, r: Any) -> str:
        policy: _Policy = r.policy
        key = (r.tenant_id, policy.policy_id, policy.version)
        head = self._policies.get(key)
        if head is None:
            head = _remember(
                self._policies,
                key,
                f"{r.tenant_id}\t{policy.policy_id}\t{_text(policy.policy_key)}\t"
                f"{policy.version}\t{'t' if policy.system_wide else 'f'}",
            )
        decision = self._decisions.get(r.decision)
        if decision is None:
            decision = _remember(self._decisions, r.decision, _decision_text(r.decision))
        who = (r.actor.sub, r.constitutional_hash)
        principal = self._principals.get(who)
        if principal is None:
            principal = _remember(self._principals, who, f"{_text(who[0])}\t{_text(who[1])}")
        stored_input = _NULL if r.input is None else _json_text(r.input)
        return (
            f"{r.decision_id}\t{head}\t{_text(r.input_sha256)}\t{stored_input}\t{decision}\t"
            f"{r.latency_ms!r}\t{principal}\t{r.decided_at.isoformat()}\n"
        )


def _decision_text(decision: _Decision) -> str:
    """allow, deny and obligations (the obligations are JSON texts already)."""
    deny = _json_text(sorted(decision.deny))
    obligations = "[" + ",".join(sorted(decision.obligations)) + "]"
    return f"{'t' if decision.allow else 'f'}\t{deny}\t{_escaped_json(obligations)}"


def _remember(table: dict[Any, str], key: Any, value: str) -> str:
    if len(table) >= MAX_REMEMBERED:
        table.clear()
    table[key] = value
    return value


class PostgresDecisionLogStore:
    def __init__(self, conninfo: str) -> None:
        self.conninfo = conninfo
        self._conn: psycopg.Connection[Any] | None = None
        self._rows = CopyRows()

    def _connection(self) -> psycopg.Connection[Any]:
        if self._conn is None or self._conn.closed:
            self._conn = psycopg.connect(self.conninfo, autocommit=True)
        return self._conn

    def insert(self, records: Sequence[Any]) -> None:
        try:
            conn = self._connection()
            with conn.transaction(), conn.cursor() as cur:
                cur.execute(_STAGE)
                with cur.copy(_COPY) as copy:
                    for start in range(0, len(records), CHUNK_ROWS):
                        copy.write(self._rows.copy_text(records[start : start + CHUNK_ROWS]))
                        time.sleep(0)  # let a waiting request thread have the interpreter
                cur.execute(_INSERT)
        except psycopg.OperationalError:
            self.close()
            raise

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None
