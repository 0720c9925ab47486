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

import psycopg
from eventsourcing.persistence import StoredEvent
from eventsourcing.postgres import PostgresApplicationRecorder, PostgresFactory
from psycopg import Cursor
from psycopg.rows import DictRow
from psycopg.sql import SQL

from domain.tenancy import current_tenant

SET_TENANT = "SELECT set_config('app.current_tenant_id', %s, true)"
_INSERT_CLAIMS = (
    "INSERT INTO tenant_claims (kind, value) SELECT * FROM unnest(%s::varchar[], %s::varchar[])"
)
_DELETE_CLAIMS = (
    "DELETE FROM tenant_claims WHERE (kind, value) IN "
    "(SELECT * FROM unnest(%s::varchar[], %s::varchar[]))"
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
        """The library's pipelined insert, plus: a connection whose pipeline failed is closed.

        After a failed pipeline (a taken claim, a version conflict) psycopg's bookkeeping of
        prepared statements can disagree with the server ("prepared statement does not exist"
        on the next use), so such a connection is discarded rather than returned to the pool.
        """
        failure: Exception | None = None
        notification_ids: Sequence[int] | None = None
        with self.datastore.get_connection() as conn:
            try:
                with conn.pipeline() as pipeline, conn.transaction():
                    try:
                        with conn.cursor() as curs:
                            self._insert_events(curs, stored_events, **kwargs)
                            self._insert_stored_events(curs, stored_events, **kwargs)
                            pipeline.sync()
                            notification_ids = self._fetch_ids_after_insert_events(
                                curs, stored_events, **kwargs
                            )
                    except psycopg.Error as exc:
                        failure = exc  # re-raised once the pipeline has exited
                if failure is not None:
                    raise failure
            except psycopg.Error as exc:
                conn.close()
                if failure is not None and failure is not exc:
                    raise failure from None  # the cause, not the aborted pipeline's echo
                raise
        return notification_ids

    def _insert_events(
        self, curs: Cursor[DictRow], stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> None:
        curs.execute(SET_TENANT, [tenant_setting()], prepare=True)
        releases = list(kwargs.get("releases", ()))
        claims = list(kwargs.get("claims", ()))
        if releases:
            curs.execute(_DELETE_CLAIMS, _columns(releases), prepare=True)
        if claims:
            curs.execute(_INSERT_CLAIMS, _columns(claims), prepare=True)
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
