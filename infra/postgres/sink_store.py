"""The sinks' tables as the projector role (it sees every tenant's rows; every statement here
names the tenant that owns the sink): the dead letters of migration 0017, the sink integrations
to run, each sink's delivery position, and the slugs of tenants for enrichment."""

from __future__ import annotations

import json
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import psycopg
from psycopg.rows import dict_row

from domain.sinks import DeadLetter, SinkRecord, record_of_body

_ADD = """
INSERT INTO sink_dead_letters (tenant_id, integration_id, event_id, position, event_tenant_id,
    event_type, record, error, attempts)
VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)
ON CONFLICT (integration_id, event_id) DO UPDATE SET error = EXCLUDED.error,
    attempts = sink_dead_letters.attempts + EXCLUDED.attempts, last_failed_at = now()
"""
_LIST = """
SELECT event_id, position, event_tenant_id, event_type, record, error, attempts,
    first_failed_at, last_failed_at
FROM sink_dead_letters WHERE tenant_id = %s AND integration_id = %s
ORDER BY position LIMIT %s
"""
_COUNT = "SELECT count(*) FROM sink_dead_letters WHERE tenant_id = %s AND integration_id = %s"
_REMOVE = (
    "DELETE FROM sink_dead_letters WHERE tenant_id = %s AND integration_id = %s "
    "AND event_id = ANY(%s)"
)
_FAILED_AGAIN = (
    "UPDATE sink_dead_letters SET attempts = attempts + 1, error = %s, last_failed_at = now() "
    "WHERE tenant_id = %s AND integration_id = %s AND event_id = %s"
)
_SINKS = """
SELECT integration_id, tenant_id, version FROM enterprise_integrations
WHERE integration_type = 'siem' AND enabled AND archived_at IS NULL ORDER BY created_at
"""


@dataclass(frozen=True)
class ConfiguredSink:
    integration_id: UUID
    tenant_id: UUID
    version: int


class SinkStore:
    def __init__(self, conninfo: str) -> None:
        self._conninfo = conninfo
        self._lock = threading.Lock()
        self._conn: psycopg.Connection[Any] | None = None
        self._slugs: dict[UUID, str] = {}

    def _connection(self) -> psycopg.Connection[Any]:
        if self._conn is None or self._conn.closed:
            self._conn = psycopg.connect(self._conninfo, autocommit=True)
        return self._conn

    def _execute(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        with self._lock:
            try:
                cur = self._connection().execute(sql, params)
            except psycopg.OperationalError:
                self.close()  # a lost connection: the next call reconnects
                raise
            return cur.fetchall() if cur.description else []

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    # --- dead letters --------------------------------------------------------------------------

    def add(
        self,
        owner: UUID,
        integration_id: UUID,
        failures: Sequence[tuple[SinkRecord, str]],
        attempts: int,
    ) -> None:
        with (
            self._lock,
            self._connection().transaction() as tx,
            tx.connection.cursor() as cur,
        ):
            cur.executemany(
                _ADD,
                [
                    (
                        owner,
                        integration_id,
                        r.event_id,
                        r.position,
                        r.tenant_id,
                        r.event_type,
                        r.json_text,
                        error[:2000],
                        attempts,
                    )
                    for r, error in failures
                ],
            )

    def dead_letters(
        self, owner: UUID, integration_id: UUID, limit: int = 1000
    ) -> list[DeadLetter]:
        rows = self._execute(_LIST, [owner, integration_id, limit])
        return [_dead_letter(row) for row in rows]

    def count(self, owner: UUID, integration_id: UUID) -> int:
        rows = self._execute(_COUNT, [owner, integration_id])
        return int(rows[0][0]) if rows else 0

    def remove(self, owner: UUID, integration_id: UUID, event_ids: Sequence[str]) -> None:
        if event_ids:
            self._execute(_REMOVE, [owner, integration_id, [UUID(e) for e in event_ids]])

    def failed_again(self, owner: UUID, integration_id: UUID, event_id: str, error: str) -> None:
        self._execute(_FAILED_AGAIN, [error[:2000], owner, integration_id, UUID(event_id)])

    # --- sinks, positions, tenants -------------------------------------------------------------

    def configured(self) -> list[ConfiguredSink]:
        """Every enabled, live SIEM integration of every tenant."""
        return [
            ConfiguredSink(UUID(str(i)), UUID(str(t)), int(v)) for i, t, v in self._execute(_SINKS)
        ]

    def status(self, follower: str, scope: UUID | None) -> dict[str, Any]:
        """The follower's position, the head of the log it sees (its tenant's events, or all
        for a platform sink), and how many events and seconds it is behind."""
        tenant_filter = "" if scope is None else " AND tenant_id = %(scope)s"
        with self._lock, self._connection().cursor(row_factory=dict_row) as cur:
            row = cur.execute(
                "SELECT coalesce((SELECT position FROM projection_positions WHERE name = "
                "%(name)s), 0) AS position",
                {"name": follower},
            ).fetchone()
            position = int(row["position"]) if row else 0
            lag = cur.execute(
                "SELECT count(*) AS behind, "  # noqa: S608 - the filter is one of two constants; values bound  # nosec B608
                "coalesce(extract(epoch FROM now() - min(recorded_at)), 0) AS seconds, "
                "coalesce(max(notification_id), %(position)s) AS head "
                f"FROM governance_events WHERE notification_id > %(position)s{tenant_filter}",
                {"position": position, "scope": scope},
            ).fetchone()
        assert lag is not None
        return {
            "position": position,
            "head": int(lag["head"]),
            "events_behind": int(lag["behind"]),
            "seconds_behind": round(float(lag["seconds"]), 3),
        }

    def tenant_slug(self, tenant_id: UUID) -> str | None:
        """The tenant's slug (kept once found: slugs never change); None while the tenants
        read model has not caught up with a new tenant, or once it is purged."""
        slug = self._slugs.get(tenant_id)
        if slug is None:
            rows = self._execute(
                "SELECT tenant_slug FROM tenants WHERE tenant_id = %s", [tenant_id]
            )
            slug = str(rows[0][0]) if rows else None
            if slug is not None:
                self._slugs[tenant_id] = slug
        return slug


def _dead_letter(row: tuple[Any, ...]) -> DeadLetter:
    event_id, position, _tenant, _type, record, error, attempts, first, last = row
    body = record if isinstance(record, dict) else json.loads(record)
    return DeadLetter(
        record=record_of_body(body, position=int(position), event_id=str(event_id)),
        error=str(error),
        attempts=int(attempts),
        first_failed_at=first,
        last_failed_at=last,
    )
