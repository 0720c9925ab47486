"""Who is asking, and what every command brings along."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from uuid import UUID

from domain.events import Actor, EventMeta
from domain.maci import MaciRole
from domain.tenancy import SYSTEM_TENANT_ID


@dataclass(frozen=True)
class Principal:
    """An authenticated user or agent: the claims of a verified token."""

    sub: str
    tenant_id: UUID
    roles: tuple[MaciRole, ...]
    auth_method: str = "token"
    actor_type: str = "user"
    sid: str = ""  # the session (and token id) of the access token, for logout and revocation
    jti: str = ""

    @property
    def is_platform(self) -> bool:
        """A principal of the system tenant operates the platform."""
        return self.tenant_id == SYSTEM_TENANT_ID

    @property
    def primary_role(self) -> MaciRole | None:
        return max(self.roles, key=lambda r: r.rank) if self.roles else None

    def effective_roles(self) -> frozenset[MaciRole]:
        return self._effective_roles

    def actor(self) -> Actor:
        return self._actor

    # Worked out once per principal (it is immutable; the edge reuses the principal of a token
    # it has verified before, so most requests find them done).
    @cached_property
    def _effective_roles(self) -> frozenset[MaciRole]:
        held: set[MaciRole] = set()
        for role in self.roles:
            held |= role.includes()
        return frozenset(held)

    @cached_property
    def _actor(self) -> Actor:
        return Actor(
            sub=self.sub, roles=self.roles, auth_method=self.auth_method, actor_type=self.actor_type
        )


@dataclass(frozen=True)
class CommandContext:
    """The principal, the constitutional hash the caller supplied, and the trace to continue."""

    principal: Principal
    constitutional_hash: str | None
    trace_parent: str | None = None

    def meta(self, tenant_id: UUID, constitutional_hash: str) -> EventMeta:
        return EventMeta(
            tenant_id=tenant_id,
            actor=self.principal.actor(),
            constitutional_hash=constitutional_hash,
            trace_parent=self.trace_parent,
        )
