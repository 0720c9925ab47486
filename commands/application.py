"""The write side's event-sourced application: one ordered log for every aggregate.

It saves and loads aggregates on behalf of one tenant at a time and turns the event store's
refusals (`domain.persistence`: a claim taken, an aggregate pinned to another tenant, a version
conflict) into typed domain errors, so handlers never see the library's exceptions.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import ClassVar, TypeVar
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError, Application
from eventsourcing.domain import Aggregate
from eventsourcing.persistence import IntegrityError

from domain.errors import (
    ConcurrentModification,
    DomainError,
    IntegrationNameTaken,
    NotFound,
    TenantNameTaken,
    TenantSlugTaken,
)
from domain.persistence import AggregatePinned, ClaimTaken
from domain.role_mapping import RoleMappingExists
from domain.tenancy import acting_for

TAggregate = TypeVar("TAggregate", bound=Aggregate)
Claim = tuple[str, str]

_CLAIM_ERRORS: dict[str, type[DomainError]] = {
    "tenant_slug": TenantSlugTaken,
    "tenant_name": TenantNameTaken,
    "integration_name": IntegrationNameTaken,
    "role_mapping": RoleMappingExists,
}


class GovernanceApplication(Application[UUID]):
    name = "governance"
    env: ClassVar[dict[str, str]] = {"CREATE_TABLE": "n"}

    def save_for(
        self,
        tenant_id: UUID,
        *aggregates: Aggregate,
        claims: Iterable[Claim] = (),
        releases: Iterable[Claim] = (),
    ) -> None:
        """Save pending events as `tenant_id`, with uniqueness claims, in one transaction."""
        with acting_for(tenant_id):
            try:
                self.save(*aggregates, claims=list(claims), releases=list(releases))
            except ClaimTaken as exc:
                error = _CLAIM_ERRORS.get(exc.kind, ConcurrentModification)
                raise error(f"{exc.kind.replace('_', ' ')} is already taken") from None
            except AggregatePinned:
                raise NotFound("resource not found") from None
            except IntegrityError:
                raise ConcurrentModification(
                    "the resource was changed by another request; reload and retry"
                ) from None

    def load(self, tenant_id: UUID, aggregate_id: UUID, kind: type[TAggregate]) -> TAggregate:
        """The aggregate as `tenant_id` sees it; NotFound if absent, not theirs, or another kind."""
        with acting_for(tenant_id):
            try:
                aggregate: Aggregate = self.repository.get(aggregate_id)
            except AggregateNotFoundError:
                raise NotFound(
                    f"{kind.__name__.lower()} not found", {"id": str(aggregate_id)}
                ) from None
        if not isinstance(aggregate, kind):
            raise NotFound(f"{kind.__name__.lower()} not found", {"id": str(aggregate_id)})
        return aggregate
