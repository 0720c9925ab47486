"""Following the event store's notification log from a tracked position: the one mechanism every
consumer of the log hangs on (read-model projections, the Kafka relay, later sinks).

A follower has a name and a row in `projection_positions` holding the notification id of the
last event it has delivered. It reads the log in batches after that position, wakes on the
NOTIFY the store sends for every insert (LISTEN), polls every `poll_seconds` in case a
notification was missed, and reconnects after a lost connection. It has two delivery modes:

- **apply in the same transaction as the position** (`apply_next`): the position row is locked,
  the next batch read, handed to the caller with the transaction's cursor, and the position moved,
  all in one transaction. Each event is applied exactly once, even across crashes; two followers
  of one name take turns. Read models use it.
- **publish, then advance once acknowledged** (`read`, then `advance`): the caller reads a batch,
  publishes it elsewhere (Kafka; SIEM, warehouse, webhooks), waits until the receiver has
  acknowledged it, and only then advances. A crash in between delivers the batch again: at least
  once, never loss; receivers deduplicate on the event id.

A follower made with `track_position=False` keeps no row: its caller holds the position in
memory (`head()` is where to start) and only `read`, `read_packed` and `follow` apply. An API
process's caches follow the log that way, from the head at their start: what they hold dies
with the process.

`read_packed` reads a batch column by column, each column one value (`PackedLog`: integers as
packed 64-bit values, texts and states concatenated with their lengths), for a reader that
builds columns of its own (the warehouse sync): one row of a few values instead of a Python
tuple, two UUIDs and a datetime an event, most of the CPU time of reading a row.

`follower_status` reports every follower's position and how far behind the log it is.
"""

from __future__ import annotations

import logging
import sys
import threading
from array import array
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol
from uuid import UUID

import psycopg

log = logging.getLogger(__name__)
EVENTS_TABLE = "governance_events"
RECONNECT_SECONDS = 1.0
# One row of the log, in this column order (tuples: the relay reads thousands per batch).
LogRow = tuple[int, UUID, int, str, bytes, UUID | None, datetime]
Applier = Callable[[psycopg.Cursor[Any], list[LogRow]], None]
_SELECT = (
    "SELECT notification_id, originator_id, originator_version, topic, state, tenant_id, "  # noqa: S608 - fixed table name; values are bound parameters  # nosec B608
    f"recorded_at FROM {EVENTS_TABLE} WHERE notification_id > %s "
    "ORDER BY notification_id LIMIT %s"
)
# The same rows up to a position, each column aggregated into one value. The bound applies after
# the LIMIT, so the scan is the index's, in order, as `_SELECT`'s (not a sort of every row of a
# range the planner misjudges as small). One aggregate over the rows: every column sees them in
# the same order, which PostgreSQL does not promise is the subquery's (a reader checks the
# positions). The time as PostgreSQL holds it: microseconds since 2000-01-01 UTC.
_PACKED = (
    "SELECT count(*), coalesce(max(notification_id), 0), "
    "string_agg(int8send(notification_id), ''::bytea), "
    "string_agg(int8send(originator_version), ''::bytea), "
    "string_agg(timestamptz_send(recorded_at), ''::bytea), "
    "string_agg(originator_id::text, ''), string_agg(topic, E'\\n'), "
    "string_agg(state, ''::bytea), string_agg(int4send(length(state)), ''::bytea){scope} "
    "FROM (SELECT * FROM {table} WHERE notification_id > %s "
    "ORDER BY notification_id LIMIT %s) AS chunk WHERE notification_id <= %s"
)
_PACKED_ALL = _PACKED.format(table=EVENTS_TABLE, scope="")
_PACKED_SCOPED = _PACKED.format(
    table=EVENTS_TABLE,
    scope=", string_agg(CASE WHEN tenant_id = %s THEN '1' ELSE '0' END, '')",
)
_HEAD = f"SELECT coalesce(max(notification_id), 0) FROM {EVENTS_TABLE}"  # noqa: S608 - fixed table name; values are bound parameters  # nosec B608
_REGISTER = "INSERT INTO projection_positions (name) VALUES (%s) ON CONFLICT DO NOTHING"
_POSITION = "SELECT position FROM projection_positions WHERE name = %s"
_MOVE = "UPDATE projection_positions SET position = %s, updated_at = now() WHERE name = %s"


def _integers(packed: bytes | None, code: str) -> array[int]:
    """Big-endian packed integers (PostgreSQL's binary `int8send`/`int4send`) as an array."""
    out = array(code)
    out.frombytes(packed or b"")
    if sys.byteorder == "little":
        out.byteswap()
    return out


@dataclass(frozen=True)
class PackedLog:
    """Rows of the log read column by column (`LogFollower.read_packed`), in one order."""

    count: int
    last: int  # the greatest position read (0 when none)
    positions: array[int]  # int64 each
    versions: array[int]  # int64 each
    recorded_us: array[int]  # recorded_at, microseconds since 2000-01-01 UTC (PostgreSQL's)
    originator_ids: str  # the canonical text of each aggregate id, 36 characters each
    topics: list[str]
    states: bytes  # each stored state, one after the other
    state_lengths: array[int]  # int32 each
    in_scope: bytes | None  # b"1" or b"0" a row (its tenant is the scope); None: no scope


class Projection(Protocol):
    """What a read model implements to be followed in the first delivery mode: a name (its
    follower's), the tables it owns (emptied for a replay), and `apply`, called with the cursor
    of the transaction that also moves its position, so each event is applied exactly once."""

    @property
    def name(self) -> str: ...

    @property
    def tables(self) -> tuple[str, ...]: ...

    def apply(self, cur: psycopg.Cursor[Any], event: Any) -> None:
        """Apply one domain event; ignore events this projection does not care about."""
        ...


class LogFollower:
    """Follows the notification log as `name` (see the module docstring)."""

    def __init__(
        self,
        conninfo: str,
        name: str,
        *,
        batch_size: int = 500,
        synchronous_commit: bool = True,
        track_position: bool = True,
    ) -> None:
        self.conninfo = conninfo
        self.name = name
        self.track_position = track_position
        self.batch_size = batch_size
        # Off only where losing the last advance in a database crash merely delivers again.
        self.synchronous_commit = synchronous_commit
        self._conn: psycopg.Connection[Any] | None = None

    def _connection(self) -> psycopg.Connection[Any]:
        if self._conn is None or self._conn.closed:
            self._conn = psycopg.connect(self.conninfo, autocommit=True)
            if not self.synchronous_commit:
                self._conn.execute("SET synchronous_commit = off")
            if self.track_position:
                self._conn.execute(_REGISTER, [self.name])
        return self._conn

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    # --- position -----------------------------------------------------------------------------

    def position(self) -> int:
        row = self._connection().execute(_POSITION, [self.name]).fetchone()
        return int(row[0]) if row else 0

    def advance(self, position: int) -> None:
        """Move the position to `position` (second mode: once the batch up to it is
        acknowledged). Also a rewind: 0 delivers the whole log again."""
        self._connection().execute(_MOVE, [position, self.name])

    def reset(self, tables: Sequence[str] = ()) -> None:
        """Empty `tables` and rewind to the start of the log, in one transaction (a replay)."""
        conn = self._connection()
        with conn.transaction():
            conn.execute(_POSITION + " FOR UPDATE", [self.name])
            for table in tables:
                conn.execute(f"TRUNCATE {table}")
            conn.execute(_MOVE, [0, self.name])

    def head(self) -> int:
        """The notification id of the last event recorded so far (0 for an empty log)."""
        row = self._connection().execute(_HEAD).fetchone()
        return int(row[0]) if row else 0

    # --- reading ------------------------------------------------------------------------------

    def read(self, after: int, limit: int | None = None) -> list[LogRow]:
        """The next events after notification id `after`, in log order (second mode). In
        PostgreSQL's binary format: the state arrives as its bytes, not as hex text to decode
        (a third of the CPU time of reading a row)."""
        cur = self._connection().cursor(binary=True)
        return cur.execute(_SELECT, [after, limit or self.batch_size], prepare=True).fetchall()

    def read_packed(
        self, after: int, limit: int, upto: int, scope: UUID | None = None
    ) -> PackedLog:
        """Up to `limit` events after `after` and up to `upto`, packed column by column (see
        the module docstring); with `scope`, whether each event's tenant is that one."""
        cur = self._connection().cursor(binary=True)
        if scope is None:
            row = cur.execute(_PACKED_ALL, [after, limit, upto], prepare=True).fetchone()
        else:
            row = cur.execute(_PACKED_SCOPED, [scope, after, limit, upto], prepare=True).fetchone()
        assert row is not None  # an aggregate without GROUP BY answers one row
        count = int(row[0])
        topics = row[6].split("\n") if count else []
        if len(topics) != count:
            msg = "a topic of the log holds a line break"
            raise ValueError(msg)
        return PackedLog(
            count=count,
            last=int(row[1]),
            positions=_integers(row[2], "q"),
            versions=_integers(row[3], "q"),
            recorded_us=_integers(row[4], "q"),
            originator_ids=row[5] or "",
            topics=topics,
            states=bytes(row[7] or b""),
            state_lengths=_integers(row[8], "i"),
            in_scope=None if scope is None else (row[9] or "").encode(),
        )

    def apply_next(
        self, apply: Callable[[psycopg.Cursor[Any], list[LogRow]], None]
    ) -> list[LogRow]:
        """First mode: lock the position, read the next batch, `apply(cur, rows)` and move the
        position past it, in one transaction. Returns the batch (empty at the head of the log)."""
        conn = self._connection()
        with conn.transaction(), conn.cursor() as cur:
            row = cur.execute(_POSITION + " FOR UPDATE", [self.name]).fetchone()
            position = int(row[0]) if row else 0
            rows: list[LogRow] = cur.execute(
                _SELECT, [position, self.batch_size], prepare=True
            ).fetchall()
            if rows:
                apply(cur, rows)
                cur.execute(_MOVE, [rows[-1][0], self.name])
        return rows

    # --- following ----------------------------------------------------------------------------

    def follow(
        self,
        stop: threading.Event,
        catch_up: Callable[[], int],
        *,
        poll_seconds: float = 1.0,
        transient: tuple[type[Exception], ...] = (),
        on_retry: Callable[[Exception], None] | None = None,
    ) -> None:
        """Call `catch_up` (deliver what is there; return how many events) until `stop` is set,
        again whenever the store notifies a new event or `poll_seconds` passed. A lost database
        connection is reopened, and a `transient` failure retried, both after a second (the
        position has not moved past anything undelivered). Any other exception propagates: the
        supervisor restarts the worker."""
        while not stop.is_set():
            try:
                with psycopg.connect(self.conninfo, autocommit=True) as listener:
                    listener.execute(f"LISTEN {EVENTS_TABLE}")
                    while not stop.is_set():
                        if catch_up():
                            continue
                        for _ in listener.notifies(timeout=poll_seconds, stop_after=1):
                            pass
            except psycopg.OperationalError:
                log.warning("%s lost its database connection; reconnecting", self.name)
                self.close()
                stop.wait(RECONNECT_SECONDS)
            except transient as exc:
                log.warning("%s: %s; trying again", self.name, exc)
                if on_retry is not None:
                    on_retry(exc)
                stop.wait(RECONNECT_SECONDS)


def follower_status(conn: psycopg.Connection[Any]) -> list[dict[str, Any]]:
    """Each follower's position, the head of the log, and how far behind it is (events, and the
    age in seconds of the oldest event it has not delivered).

    `conn` must see the whole log (the projector role, or acgs2_admin).
    """
    head = conn.execute(
        f"SELECT coalesce(max(notification_id), 0) FROM {EVENTS_TABLE}"  # noqa: S608 - fixed table name; values are bound parameters  # nosec B608
    ).fetchone()
    head_id = int(head[0]) if head else 0
    status = []
    positions = conn.execute("SELECT name, position FROM projection_positions ORDER BY name")
    for name, position in positions.fetchall():
        oldest = conn.execute(
            f"SELECT extract(epoch FROM now() - recorded_at) FROM {EVENTS_TABLE} "  # noqa: S608 - fixed table name; values are bound parameters  # nosec B608
            "WHERE notification_id > %s ORDER BY notification_id LIMIT 1",
            [position],
        ).fetchone()
        status.append(
            {
                "name": name,
                "position": int(position),
                "head": head_id,
                "events_behind": max(0, head_id - int(position)),
                "seconds_behind": round(float(oldest[0]), 3) if oldest else 0.0,
            }
        )
    return status
