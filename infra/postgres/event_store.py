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
from psycopg import Cursor
from psycopg.rows import DictRow
from psycopg.sql import SQL

from domain.tenancy import current_tenant

SET_TENANT = "SELECT set_config('app.current_tenant_id', %s, true)"
_INSERT_CLAIM = "INSERT INTO tenant_claims (kind, value) VALUES (%s, %s)"
_DELETE_CLAIM = "DELETE FROM tenant_claims WHERE kind = %s AND value = %s"


def tenant_setting() -> str:
    tenant: UUID | None = current_tenant()
    return "" if tenant is None else str(tenant)


class TenantScopedApplicationRecorder(PostgresApplicationRecorder):
    def _insert_events(
        self, curs: Cursor[DictRow], stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> None:
        # Not prepared: this runs in a pipeline, and a failed pipeline (a taken claim) would
        # leave psycopg believing in prepared statements the server never created.
        curs.execute(SET_TENANT, [tenant_setting()], prepare=False)
        for kind, value in kwargs.get("releases", ()):
            curs.execute(_DELETE_CLAIM, [kind, value], prepare=False)
        for kind, value in kwargs.get("claims", ()):
            curs.execute(_INSERT_CLAIM, [kind, value], prepare=False)
        super()._insert_events(curs, stored_events, **kwargs)

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

    def __init__(self, env: Any) -> None:
        super().__init__(env)
        # No automatic preparation on the pipelined insert path (see `_insert_events`).
        pool_kwargs = self.datastore.pool.kwargs
        if isinstance(pool_kwargs, dict):
            pool_kwargs["prepare_threshold"] = None
