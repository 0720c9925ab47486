"""The write side's event-sourced application: one ordered log for every aggregate.

It saves and loads aggregates on behalf of one tenant at a time and turns persistence failures
into typed domain errors, so handlers never see the library's or the driver's exceptions.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, ClassVar, TypeVar
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError, Application
from eventsourcing.domain import Aggregate
from eventsourcing.persistence import IntegrityError, ProgrammingError

from domain.errors import (
    ConcurrentModification,
    DomainError,
    NotFound,
    TenantNameTaken,
    TenantSlugTaken,
)
from domain.tenancy import acting_for

TAggregate = TypeVar("TAggregate", bound=Aggregate)
Claim = tuple[str, str]

_CLAIM_ERRORS: dict[str, type[DomainError]] = {
    "tenant_claims_tenant_slug": TenantSlugTaken,
    "tenant_claims_tenant_name": TenantNameTaken,
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
            except IntegrityError as exc:
                raise _conflict(exc) from None
            except ProgrammingError as exc:
                if _constraint(exc) == "aggregate_tenant_pin":
                    raise NotFound("resource not found") from None
                raise

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


def _constraint(exc: Exception) -> str | None:
    cause: Any = exc.__cause__
    diag = getattr(cause, "diag", None)
    return getattr(diag, "constraint_name", None)


def _conflict(exc: IntegrityError) -> DomainError:
    name = _constraint(exc)
    if name in _CLAIM_ERRORS:
        return _CLAIM_ERRORS[name](
            f"{name.removeprefix('tenant_claims_').replace('_', ' ')} is already taken"
        )
    return ConcurrentModification("the resource was changed by another request; reload and retry")
