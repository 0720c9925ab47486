"""Which tenant the current unit of work acts for. Infrastructure reads it to scope every
database transaction (`app.current_tenant_id`); commands and queries set it."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from uuid import UUID

SYSTEM_TENANT_ID = UUID("00000000-0000-0000-0000-000000000000")
SYSTEM_TENANT_SLUG = "system"

_current_tenant: ContextVar[UUID | None] = ContextVar("acgs_current_tenant", default=None)


def current_tenant() -> UUID | None:
    return _current_tenant.get()


@contextmanager
def acting_for(tenant_id: UUID) -> Iterator[None]:
    """Scope the enclosed work (and the threads it hands work to) to one tenant."""
    token = _current_tenant.set(tenant_id)
    try:
        yield
    finally:
        _current_tenant.reset(token)
