"""Reading the audit log: filters, pages (offset or keyset cursor), and the rows of an export.

Pages are newest first, ordered by (timestamp, audit_id) descending. The keyset cursor (`after`)
names the last row of a page; the next page starts strictly below it, which the index
`(tenant_id, timestamp DESC, audit_id DESC)` serves in every monthly partition, so a page deep in
the log costs what the first does. Exports read oldest first.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

import psycopg
from psycopg.rows import dict_row

from domain.audit_chain import CHAINED_FIELDS, ChainReport, verify_chain
from domain.errors import ValidationFailed

COLUMNS = (
    "audit_id",
    "tenant_id",
    "timestamp",
    "event_type",
    "event_category",
    "actor_id",
    "actor_type",
    "action",
    "result",
    "target_resource",
    "target_id",
    "details",
    "ip_address",
    "user_agent",
    "session_id",
    "error_message",
    "constitutional_validation_passed",
    "constitutional_hash",
    "chain_seq",
    "row_hash",
)
_SELECT = f"SELECT {', '.join(COLUMNS)} FROM tenant_audit_log"  # noqa: S608 - fixed columns, WHERE from fixed fragments; values bound  # nosec B608
_EXACT = ("event_category", "actor_id", "result", "event_type", "target_resource")


@dataclass(frozen=True)
class AuditFilters:
    """What a query or export selects: a time range [start, end) and exact-match fields.
    `tenant_id` narrows a query across tenants (a tenant's own session sees only its rows)."""

    start_time: datetime
    end_time: datetime
    event_category: str | None = None
    actor_id: str | None = None
    result: str | None = None
    event_type: str | None = None
    target_resource: str | None = None
    tenant_id: UUID | None = None

    def as_dict(self) -> dict[str, Any]:
        """JSON-able (for the export job and its audit entry); None fields left out."""
        out: dict[str, Any] = {}
        for key, value in asdict(self).items():
            if value is None:
                continue
            out[key] = value.isoformat() if isinstance(value, datetime) else str(value)
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> AuditFilters:
        values: dict[str, Any] = dict(data)
        values["start_time"] = datetime.fromisoformat(values["start_time"])
        values["end_time"] = datetime.fromisoformat(values["end_time"])
        if values.get("tenant_id"):
            values["tenant_id"] = UUID(values["tenant_id"])
        return cls(**values)

    def where(self) -> tuple[str, list[Any]]:
        clauses = ["timestamp >= %s", "timestamp < %s"]
        params: list[Any] = [self.start_time, self.end_time]
        if self.tenant_id is not None:
            clauses.append("tenant_id = %s")
            params.append(self.tenant_id)
        for name in _EXACT:
            value = getattr(self, name)
            if value is not None:
                clauses.append(f"{name} = %s")
                params.append(value)
        return " WHERE " + " AND ".join(clauses), params


def encode_cursor(row: dict[str, Any]) -> str:
    """The keyset cursor naming `row` (opaque to clients: base64url of its time and id)."""
    raw = json.dumps([row["timestamp"].isoformat(), str(row["audit_id"])]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, UUID]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        at, audit_id = json.loads(raw)
        return datetime.fromisoformat(at), UUID(audit_id)
    except (ValueError, TypeError) as exc:
        raise ValidationFailed.field("after", "is not a cursor this service issued") from exc


COUNT_LIMIT = 1_000  # a first page counts its matches up to this many


@dataclass
class AuditPage:
    rows: list[dict[str, Any]]
    total: int | None  # None on cursor pages (counting again would cost every page)
    next_cursor: str | None
    total_exact: bool = True  # False: more than COUNT_LIMIT rows match; total is COUNT_LIMIT


Statements = list[tuple[str, list[Any]]]
# Runs statements in one round trip in the caller's scope (a tenant's, or across tenants) and
# returns the rows of each (infra.postgres.database.Database.fetch_sets).
FetchSets = Callable[[Statements], Awaitable[list[list[Any]]]]
# The page's columns, `details` as its JSON text (sent on as it is, never decoded).
_PAGE_SELECT = _SELECT.replace(" details,", " details::text AS details,")


async def audit_page(
    fetch_sets: FetchSets,
    filters: AuditFilters,
    *,
    limit: int,
    offset: int = 0,
    after: str | None = None,
) -> AuditPage:
    """One page, newest first, in one round trip: the count (first pages only) and the rows."""
    where, params = filters.where()
    statements: Statements = []
    if after is None:
        statements.append(
            (
                f"SELECT count(*) AS n FROM (SELECT 1 FROM tenant_audit_log{where} LIMIT %s) AS m",  # noqa: S608 - fixed columns, WHERE from fixed fragments; values bound  # nosec B608
                [*params, COUNT_LIMIT + 1],
            )
        )
        keyset, keyset_params = "", []
    else:
        at, audit_id = decode_cursor(after)
        keyset, keyset_params = " AND (timestamp, audit_id) < (%s, %s)", [at, audit_id]
    statements.append(
        (
            f"{_PAGE_SELECT}{where}{keyset} ORDER BY timestamp DESC, audit_id DESC "
            "LIMIT %s OFFSET %s",
            [*params, *keyset_params, limit + 1, offset],
        )
    )
    results = await fetch_sets(statements)
    total, exact = None, True
    if after is None:
        counted = int(results[0][0]["n"])
        total, exact = min(counted, COUNT_LIMIT), counted <= COUNT_LIMIT
    rows = list(results[-1])
    more = len(rows) > limit
    rows = rows[:limit]
    return AuditPage(rows, total, encode_cursor(rows[-1]) if more and rows else None, exact)


def count_rows(cur: psycopg.Cursor[Any], tenant_id: UUID, filters: AuditFilters) -> int:
    where, params = filters.where()
    row = cur.execute(
        f"SELECT count(*) FROM tenant_audit_log{where} AND tenant_id = %s",  # noqa: S608 - fixed columns, WHERE from fixed fragments; values bound  # nosec B608
        [*params, tenant_id],
    ).fetchone()
    return int(row[0]) if row else 0


def export_rows(
    conn: psycopg.Connection[Any], tenant_id: UUID, filters: AuditFilters, batch: int = 2000
) -> Iterator[dict[str, Any]]:
    """The rows of an export of `tenant_id`, oldest first, streamed (a server-side cursor);
    `details` is the stored JSON text."""
    where, params = filters.where()
    with conn.transaction(), conn.cursor(name="audit_export", row_factory=dict_row) as cur:
        cur.itersize = batch
        cur.execute(
            f"{_PAGE_SELECT}{where} AND tenant_id = %s ORDER BY timestamp, audit_id",
            [*params, tenant_id],
        )
        yield from cur


def chain_head(cur: psycopg.Cursor[Any], tenant_id: UUID) -> dict[str, Any]:
    """The head of a tenant's hash chain: the number and hash of its newest row, and the anchor
    where its retained part starts."""
    with cur.connection.cursor() as own:
        row = own.execute(
            "SELECT seq, hash, anchor_seq, anchor_hash FROM audit_chain_heads WHERE tenant_id = %s",
            [tenant_id],
        ).fetchone()
    if row is None:
        return {"seq": 0, "hash": "0" * 64, "anchor_seq": 0, "anchor_hash": "0" * 64}
    return {"seq": int(row[0]), "hash": row[1], "anchor_seq": int(row[2]), "anchor_hash": row[3]}


_CHAIN_ROWS = (
    f"SELECT {', '.join(dict.fromkeys((*CHAINED_FIELDS, 'prev_hash', 'row_hash')))} "  # noqa: S608 - fixed columns, WHERE from fixed fragments; values bound  # nosec B608
    "FROM tenant_audit_log WHERE tenant_id = %s AND chain_seq IS NOT NULL ORDER BY chain_seq"
)


def verify_tenant_chain(conn: psycopg.Connection[Any], tenant_id: UUID) -> ChainReport:
    """Verify a tenant's hash chain against its head (a connection that sees its rows: the
    projector role, or a session scoped to the tenant). Rows are streamed, not all in memory."""
    with conn.cursor() as cur:
        head = chain_head(cur, tenant_id)
    with conn.transaction(), conn.cursor(name="audit_verify", row_factory=dict_row) as rows:
        rows.itersize = 5000
        rows.execute(_CHAIN_ROWS, [tenant_id])
        return verify_chain(
            rows,
            head_seq=head["seq"],
            head_hash=head["hash"],
            anchor_seq=head["anchor_seq"],
            anchor_hash=head["anchor_hash"],
        )


def replay_rows(
    conn: psycopg.Connection[Any],
    tenant_id: UUID,
    *,
    from_seq: int = 1,
    from_time: datetime | None = None,
) -> Iterator[dict[str, Any]]:
    """A tenant's audit stream in chain order, from a chain position or a time (streamed)."""
    time_clause, params = "", [tenant_id, from_seq]
    if from_time is not None:
        time_clause, params = " AND timestamp >= %s", [*params, from_time]
    with conn.transaction(), conn.cursor(name="audit_replay", row_factory=dict_row) as cur:
        cur.itersize = 2000
        cur.execute(
            f"{_SELECT} WHERE tenant_id = %s AND chain_seq >= %s{time_clause} ORDER BY chain_seq",
            params,
        )
        yield from cur


TIMELINE_STEPS = tuple(
    timedelta(seconds=s)
    for s in (60, 300, 900, 1800, 3600, 3 * 3600, 6 * 3600, 12 * 3600, 86400, 7 * 86400)
)


def timeline_step(filters: AuditFilters, buckets: int = 60) -> timedelta:
    """The smallest step of `TIMELINE_STEPS` that splits the range into at most `buckets`."""
    span = filters.end_time - filters.start_time
    for step in TIMELINE_STEPS:
        if span / step <= buckets:
            return step
    return TIMELINE_STEPS[-1]


async def audit_timeline(
    fetch_sets: FetchSets, filters: AuditFilters, step: timedelta
) -> list[dict[str, Any]]:
    """The matching rows counted per `step` (from the range's start) and per result, oldest
    first: `at` (the bucket's start), `result`, `n`. Buckets without rows are left out."""
    where, params = filters.where()
    statement = (
        "SELECT date_bin(%s, timestamp, %s) AS at, result, count(*) AS n "  # noqa: S608 - fixed columns, WHERE from fixed fragments; values bound  # nosec B608
        f"FROM tenant_audit_log{where} GROUP BY 1, 2 ORDER BY 1, 2"
    )
    results = await fetch_sets([(statement, [step, filters.start_time, *params])])
    return [dict(r) for r in results[0]]
