"""The eventsourcing library's PostgreSQL persistence, scoped to a tenant.

Selected by the composition root with
PERSISTENCE_MODULE=infra.postgres.event_store:TenantScopedFactory.
Every transaction that reads or writes events first sets `app.current_tenant_id` (transaction-local)
from `domain.tenancy.current_tenant()`, so RLS filters what is read and the column default stamps
what is written. Uniqueness claims (`claims=` / `releases=` passed to `Application.save`) are
written in the same transaction as the events, so either both commit or neither does.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from uuid import UUID

from eventsourcing.persistence import StoredEvent
from eventsourcing.postgres import PostgresApplicationRecorder, PostgresFactory
from psycopg.sql import SQL

from domain.tenancy import current_tenant

SET_TENANT = "SELECT set_config('app.current_tenant_id', %s, true)"
_INSERT_EVENTS = (
    "SELECT * FROM acgs_insert_events(%s, %s::varchar[], %s::varchar[], %s::varchar[], "
    "%s::varchar[], %s::stored_event_uuid[])"
)


def _columns(pairs: list[tuple[str, str]]) -> list[list[str]]:
    return [[kind for kind, _ in pairs], [value for _, value in pairs]]


def tenant_setting() -> str:
    tenant: UUID | None = current_tenant()
    return "" if tenant is None else str(tenant)


class TenantScopedApplicationRecorder(PostgresApplicationRecorder):
    def insert_events(
        self, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        """Claims, releases and events in one call of `acgs_insert_events` (migration 0004):
        one statement, one round trip, one implicit transaction scoped to the tenant."""
        if not stored_events:
            return []
        events = [
            self.construct_pg_stored_event(e.originator_id, e.originator_version, e.topic, e.state)
            for e in stored_events
        ]
        claims = _columns(list(kwargs.get("claims", ())))
        releases = _columns(list(kwargs.get("releases", ())))
        with self.datastore.get_connection() as conn, conn.cursor() as curs:
            curs.execute(
                _INSERT_EVENTS, [tenant_setting(), *claims, *releases, events], prepare=True
            )
            return [row["acgs_insert_events"] for row in curs.fetchall()]

    def select_events(
        self,
        originator_id: UUID | str,
        *,
        gt: int | None = None,
        lte: int | None = None,
        desc: bool = False,
        limit: int | None = None,
    ) -> Sequence[StoredEvent]:
        statement = self.select_events_statement
        params: list[Any] = [originator_id]
        if gt is not None:
            params.append(gt)
            statement += SQL(" AND originator_version > %s")
        if lte is not None:
            params.append(lte)
            statement += SQL(" AND originator_version <= %s")
        statement += SQL(
            " ORDER BY originator_version DESC" if desc else " ORDER BY originator_version ASC"
        )
        if limit is not None:
            params.append(limit)
            statement += SQL(" LIMIT %s")
        with self.datastore.get_connection() as conn, conn.transaction(), conn.cursor() as curs:
            curs.execute(SET_TENANT, [tenant_setting()], prepare=True)
            curs.execute(statement, params, prepare=True)
            return [
                StoredEvent(
                    originator_id=row["originator_id"],
                    originator_version=row["originator_version"],
                    topic=row["topic"],
                    state=bytes(row["state"]),
                )
                for row in curs.fetchall()
            ]


class TenantScopedFactory(PostgresFactory):
    application_recorder_class = TenantScopedApplicationRecorder
