"""Runs a projection over the event store's notification log, exactly once.

Each batch is read and applied in one transaction that also moves the projection's position
(the position row is locked first, so two runners of one projection take turns rather than apply
an event twice). The runner wakes on the library's NOTIFY for new events and polls once a second
in case a notification was missed.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import psycopg
from eventsourcing.persistence import Mapper, StoredEvent
from psycopg.rows import dict_row

from projections.base import Projection

log = logging.getLogger(__name__)
EVENTS_TABLE = "governance_events"
_SELECT = (
    f"SELECT notification_id, originator_id, originator_version, topic, state, recorded_at "  # noqa: S608
    f"FROM {EVENTS_TABLE} WHERE notification_id > %s ORDER BY notification_id LIMIT %s"
)


class ProjectionRunner:
    def __init__(
        self,
        conninfo: str,
        projection: Projection,
        mapper: Mapper[Any],
        *,
        batch_size: int = 500,
        on_batch: Callable[[str, int, float], None] | None = None,
    ) -> None:
        self.conninfo = conninfo
        self.projection = projection
        self.mapper = mapper
        self.batch_size = batch_size
        self.on_batch = on_batch  # (projection name, events applied, lag seconds of the last one)
        self._conn: psycopg.Connection[Any] | None = None

    @property
    def name(self) -> str:
        return self.projection.name

    def _connection(self) -> psycopg.Connection[Any]:
        if self._conn is None or self._conn.closed:
            self._conn = psycopg.connect(self.conninfo, autocommit=True, row_factory=dict_row)
            self._conn.execute(
                "INSERT INTO projection_positions (name) VALUES (%s) ON CONFLICT DO NOTHING",
                [self.name],
            )
        return self._conn

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def position(self) -> int:
        row = (
            self._connection()
            .execute("SELECT position FROM projection_positions WHERE name = %s", [self.name])
            .fetchone()
        )
        return int(row["position"]) if row else 0

    def step(self) -> int:
        """Apply the next batch; return how many events were applied."""
        conn = self._connection()
        with conn.transaction(), conn.cursor() as cur:
            cur.execute(
                "SELECT position FROM projection_positions WHERE name = %s FOR UPDATE", [self.name]
            )
            row = cur.fetchone()
            position = int(row["position"]) if row else 0
            rows = cur.execute(_SELECT, [position, self.batch_size], prepare=True).fetchall()
            if not rows:
                return 0
            for r in rows:
                stored = StoredEvent(
                    originator_id=r["originator_id"],
                    originator_version=r["originator_version"],
                    topic=r["topic"],
                    state=bytes(r["state"]),
                )
                self.projection.apply(cur, self.mapper.to_domain_event(stored))
            cur.execute(
                "UPDATE projection_positions SET position = %s, updated_at = now() WHERE name = %s",
                [rows[-1]["notification_id"], self.name],
            )
        if self.on_batch is not None:
            lag = (datetime.now(UTC) - rows[-1]["recorded_at"]).total_seconds()
            self.on_batch(self.name, len(rows), lag)
        return len(rows)

    def catch_up(self) -> int:
        """Apply everything recorded so far; return the number of events applied."""
        total = 0
        while applied := self.step():
            total += applied
        return total

    def reset(self) -> None:
        """Empty the read model and rewind to the start of the log (for a replay)."""
        conn = self._connection()
        with conn.transaction():
            conn.execute(
                "SELECT position FROM projection_positions WHERE name = %s FOR UPDATE", [self.name]
            )
            for table in self.projection.tables:
                conn.execute(f"TRUNCATE {table}")
            conn.execute(
                "UPDATE projection_positions SET position = 0, updated_at = now() WHERE name = %s",
                [self.name],
            )

    def run(self, stop: threading.Event, poll_seconds: float = 1.0) -> None:
        """Follow the log until `stop` is set; survives database restarts."""
        while not stop.is_set():
            try:
                with psycopg.connect(self.conninfo, autocommit=True) as listener:
                    listener.execute(f"LISTEN {EVENTS_TABLE}")
                    while not stop.is_set():
                        if self.step():
                            continue
                        for _ in listener.notifies(timeout=poll_seconds, stop_after=1):
                            pass
            except psycopg.OperationalError:
                log.warning("projection %s lost its database connection; retrying", self.name)
                self.close()
                stop.wait(1.0)


def projection_status(conn: psycopg.Connection[Any]) -> list[dict[str, Any]]:
    """Each projection's position, the head of the log, and how far behind it is.

    `conn` must see the whole log (the projector role, or acgs2_admin) and use dict rows.
    """
    cur = conn.cursor(row_factory=dict_row)
    head = cur.execute(
        f"SELECT coalesce(max(notification_id), 0) AS head FROM {EVENTS_TABLE}"  # noqa: S608
    ).fetchone()
    head_id = int(head["head"]) if head else 0
    status = []
    for row in cur.execute(
        "SELECT name, position FROM projection_positions ORDER BY name"
    ).fetchall():
        position = int(row["position"])
        oldest = cur.execute(
            f"SELECT extract(epoch FROM now() - recorded_at) AS age FROM {EVENTS_TABLE} "  # noqa: S608
            "WHERE notification_id > %s ORDER BY notification_id LIMIT 1",
            [position],
        ).fetchone()
        status.append(
            {
                "name": row["name"],
                "position": position,
                "head": head_id,
                "events_behind": max(0, head_id - position),
                "seconds_behind": round(float(oldest["age"]), 3) if oldest else 0.0,
            }
        )
    return status
