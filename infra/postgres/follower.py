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
memory (`head()` is where to start) and only `read` and `follow` apply. An API process's caches
follow the log that way, from the head at their start: what they hold dies with the process.

`follower_status` reports every follower's position and how far behind the log it is.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
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
_HEAD = f"SELECT coalesce(max(notification_id), 0) FROM {EVENTS_TABLE}"  # noqa: S608 - fixed table name; values are bound parameters  # nosec B608
_REGISTER = "INSERT INTO projection_positions (name) VALUES (%s) ON CONFLICT DO NOTHING"
_POSITION = "SELECT position FROM projection_positions WHERE name = %s"
_MOVE = "UPDATE projection_positions SET position = %s, updated_at = now() WHERE name = %s"


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
