"""The eventsourcing library's PostgreSQL persistence, scoped to a tenant.

Selected by the composition root with
PERSISTENCE_MODULE=infra.postgres.event_store:TenantScopedFactory.
Every transaction that reads or writes events first sets `app.current_tenant_id` (transaction-local)
from `domain.tenancy.current_tenant()`, so RLS filters what is read and the column default stamps
what is written. Uniqueness claims (`claims=` / `releases=` passed to `Application.save`) are
written in the same transaction as the events, so either both commit or neither does.

A save that takes a claim someone holds raises `ClaimTaken(kind)`; one that appends to another
tenant's aggregate raises `AggregatePinned` (both from `domain.persistence`): the constraint names
of the migrations are read here and nowhere else.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from uuid import UUID

from eventsourcing.persistence import IntegrityError, PersistenceError, StoredEvent
from eventsourcing.postgres import PostgresApplicationRecorder, PostgresFactory
from psycopg.sql import SQL

from domain.persistence import AggregatePinned, ClaimTaken
from domain.tenancy import current_tenant
from infra import tracing
from infra.postgres.database import SET_TENANT

_CLAIM_INDEX_PREFIX = "tenant_claims_"  # one unique index per claim kind (migration 0004)
_PIN_CONSTRAINT = "aggregate_tenant_pin"
_INSERT_EVENTS = (
    "SELECT * FROM acgs_insert_events(%s, %s::varchar[], %s::varchar[], %s::varchar[], "
    "%s::varchar[], %s::stored_event_uuid[])"
)


def _columns(pairs: list[tuple[str, str]]) -> list[list[str]]:
    return [[kind for kind, _ in pairs], [value for _, value in pairs]]


def _constraint(exc: BaseException) -> str | None:
    diag = getattr(exc.__cause__, "diag", None)
    name = getattr(diag, "constraint_name", None)
    return str(name) if name else None


def _refusal(exc: PersistenceError) -> PersistenceError:
    """The typed refusal a driver error stands for (or the error itself)."""
    name = _constraint(exc)
    if name is None:
        return exc
    if isinstance(exc, IntegrityError) and name.startswith(_CLAIM_INDEX_PREFIX):
        return ClaimTaken(name.removeprefix(_CLAIM_INDEX_PREFIX))
    if name == _PIN_CONSTRAINT:
        return AggregatePinned(str(exc))
    return exc


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
        tenant = tenant_setting()
        try:
            with (
                tracing.tracer().start_as_current_span(
                    "event_store.append",
                    attributes={tracing.TENANT: tenant, "acgs.events": len(events)},
                ),
                self.datastore.get_connection() as conn,
                conn.cursor() as curs,
            ):
                curs.execute(_INSERT_EVENTS, [tenant, *claims, *releases, events], prepare=True)
                return [row["acgs_insert_events"] for row in curs.fetchall()]
        except PersistenceError as exc:
            refusal = _refusal(exc)
            if refusal is exc:
                raise
            raise refusal from exc

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
