"""An event store in memory that keeps the tenant-scoped PostgreSQL recorder's rules, for command
tests that test no SQL (PERSISTENCE_MODULE=infra.memory.event_store:InMemoryFactory).

Like the PostgreSQL recorder it scopes every save and read to `domain.tenancy.current_tenant()`:
a tenant reads only the aggregates whose first event it saved; appending to another tenant's
aggregate raises `AggregatePinned`; uniqueness claims and releases are taken with the events or
not at all, and a claim held already raises `ClaimTaken(kind)`; a version recorded already raises
the library's IntegrityError. Nothing survives the process.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from uuid import UUID

from eventsourcing.persistence import ApplicationRecorder, StoredEvent
from eventsourcing.popo import POPOApplicationRecorder, POPOFactory

from domain.persistence import AggregatePinned, ClaimTaken
from domain.tenancy import current_tenant

Claim = tuple[str, str]


def _tenant() -> str:
    tenant: UUID | None = current_tenant()
    return "" if tenant is None else str(tenant)


class InMemoryApplicationRecorder(POPOApplicationRecorder):
    def __init__(self) -> None:
        super().__init__()
        self._claims: dict[Claim, str] = {}  # claim -> the tenant holding it
        self._owners: dict[str, str] = {}  # aggregate id -> the tenant of its first event

    def _assert_uniqueness(self, stored_events: Sequence[StoredEvent], **kwargs: Any) -> None:
        tenant = _tenant()
        if not tenant:
            msg = "no tenant: every save acts for one"
            raise AggregatePinned(msg)
        starting = {str(s.originator_id) for s in stored_events if s.originator_version == 1}
        for s in stored_events:
            aggregate = str(s.originator_id)
            if aggregate not in starting and self._owners.get(aggregate) != tenant:
                msg = f"aggregate {aggregate} belongs to another tenant"
                raise AggregatePinned(msg)
        super()._assert_uniqueness(stored_events)
        released = {c for c in self._releases(kwargs) if self._claims.get(c) == tenant}
        claimed: set[Claim] = set()
        for claim in kwargs.get("claims", ()):
            if (claim in self._claims and claim not in released) or claim in claimed:
                raise ClaimTaken(claim[0])
            claimed.add(claim)

    @staticmethod
    def _releases(kwargs: dict[str, Any]) -> list[Claim]:
        return [tuple(c) for c in kwargs.get("releases", ())]

    def _update_table(
        self, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        tenant = _tenant()
        for claim in self._releases(kwargs):
            if self._claims.get(claim) == tenant:
                del self._claims[claim]
        for claim in kwargs.get("claims", ()):
            self._claims[tuple(claim)] = tenant
        for s in stored_events:
            if s.originator_version == 1:
                self._owners[str(s.originator_id)] = tenant
        return super()._update_table(stored_events)

    def select_events(
        self,
        originator_id: UUID | str,
        *,
        gt: int | None = None,
        lte: int | None = None,
        desc: bool = False,
        limit: int | None = None,
    ) -> Sequence[StoredEvent]:
        with self._database_lock:
            if self._owners.get(str(originator_id)) != _tenant():
                return []  # as row-level security hides another tenant's events
            return super().select_events(originator_id, gt=gt, lte=lte, desc=desc, limit=limit)


class InMemoryFactory(POPOFactory):
    def application_recorder(self) -> ApplicationRecorder:
        return InMemoryApplicationRecorder()
