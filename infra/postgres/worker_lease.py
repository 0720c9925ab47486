"""One owner per worker across processes: a PostgreSQL session-level advisory lock.

A worker that must run in one process at a time however many processes start it (the Kafka relay,
the SIEM sinks, the webhook deliveries, the warehouse loads, the integration health checks) holds
the lock named after it on a connection of its own while it runs. The lock lives as long as that
connection: when the owning process dies or loses the database, PostgreSQL releases it at once,
and a process standing by takes it at its next try (every second). `held()` checks the connection,
so an owner that lost it steps down instead of running on beside the new one.
"""

from __future__ import annotations

import hashlib
from typing import Any

import psycopg

NAMESPACE = "acgs.worker:"


def lock_key(name: str) -> int:
    """The advisory lock's 64-bit key for a worker name (stable across processes and versions)."""
    digest = hashlib.sha256((NAMESPACE + name).encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


class AdvisoryLease:
    def __init__(self, conninfo: str, name: str) -> None:
        self._conninfo = conninfo
        self._key = lock_key(name)
        self._conn: psycopg.Connection[Any] | None = None

    def acquire(self) -> bool:
        """Take the lock if nobody holds it; True when this lease holds it now."""
        if self._conn is None or self._conn.closed:
            self._conn = psycopg.connect(self._conninfo, autocommit=True)
        row = self._conn.execute("SELECT pg_try_advisory_lock(%s)", [self._key]).fetchone()
        return bool(row and row[0])

    def held(self) -> bool:
        """Whether the lock is still ours: its connection is alive (the lock lives with it)."""
        if self._conn is None or self._conn.closed:
            return False
        try:
            self._conn.execute("SELECT 1")
        except psycopg.Error:
            self.release()
            return False
        return True

    def release(self) -> None:
        """Give the lock up (closing its connection releases it, even on a broken link)."""
        if self._conn is not None:
            self._conn.close()
            self._conn = None
