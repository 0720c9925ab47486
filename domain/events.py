"""What every domain event carries besides its payload."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import cache
from hashlib import sha1
from typing import Any
from uuid import NAMESPACE_URL, UUID, uuid5

from domain.maci import MaciRole

SCHEMA_VERSION = 1
_EVENT_ID_NAMESPACE = uuid5(NAMESPACE_URL, "urn:acgs:event")
_NAMESPACE_BYTES = _EVENT_ID_NAMESPACE.bytes
_VARIANT_VERSION_MASK = ~((0xC000 << 48) | (0xF000 << 64))
_RFC_4122_VERSION_5 = (0x8000 << 48) | (5 << 76)


@dataclass(frozen=True)
class Actor:
    """Who caused a change: a user or agent (`sub`), their roles, and how they authenticated."""

    sub: str
    roles: tuple[MaciRole, ...] = ()
    auth_method: str = "system"
    actor_type: str = "user"

    def as_dict(self) -> dict[str, Any]:
        return {
            "sub": self.sub,
            "roles": [r.value for r in self.roles],
            "auth_method": self.auth_method,
            "actor_type": self.actor_type,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Actor:
        return cls(
            sub=str(data["sub"]),
            roles=tuple(map(MaciRole, data.get("roles", ()))),
            auth_method=str(data.get("auth_method", "system")),
            actor_type=str(data.get("actor_type", "user")),
        )


SYSTEM_ACTOR = Actor(sub="system", auth_method="system", actor_type="system")


@dataclass(frozen=True)
class EventMeta:
    """Carried by every event: the tenant it belongs to, the actor, the hash, the trace."""

    tenant_id: UUID
    actor: Actor
    constitutional_hash: str
    trace_parent: str | None = field(default=None)

    def as_dict(self) -> dict[str, Any]:
        return {
            "tenant_id": str(self.tenant_id),
            "actor": self.actor.as_dict(),
            "constitutional_hash": self.constitutional_hash,
            "trace_parent": self.trace_parent,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> EventMeta:
        return cls(
            tenant_id=UUID(str(data["tenant_id"])),
            actor=Actor.from_dict(data["actor"]),
            constitutional_hash=str(data["constitutional_hash"]),
            trace_parent=data.get("trace_parent"),
        )


# The attributes every stored event has besides its own fields (its payload): the aggregate's
# id and version, the time, the aggregate's topic (on creation events) and the metadata.
ENVELOPE_FIELDS = frozenset(
    {"originator_id", "originator_version", "timestamp", "originator_topic", "meta", "id"}
)


def event_id(aggregate_id: UUID | str, aggregate_version: int) -> UUID:
    """A stable id for a stored event: the same after any replay, unique in the store.

    `uuid5(namespace, f"{aggregate_id}:{aggregate_version}")` (the aggregate id as a UUID or its
    canonical text), computed without `uuid5`'s slow constructor: the relay calls it per event."""
    return UUID(int=_event_id_int(aggregate_id, aggregate_version))


def event_id_text(aggregate_id: UUID | str, aggregate_version: int) -> str:
    """`str(event_id(...))` without the UUID object in between (the warehouse sync's column)."""
    h = f"{_event_id_int(aggregate_id, aggregate_version):032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def _event_id_int(aggregate_id: UUID | str, aggregate_version: int) -> int:
    name = f"{aggregate_id}:{aggregate_version}".encode()
    # UUID v5 is defined on SHA-1: an identifier, not a security use
    digest = sha1(_NAMESPACE_BYTES + name, usedforsecurity=False).digest()
    return int.from_bytes(digest[:16]) & _VARIANT_VERSION_MASK | _RFC_4122_VERSION_5


def event_type(domain_event: object) -> str:
    """`tenant.created` for `Tenant.Created`: aggregate and event class, snake-cased, dotted."""
    return event_type_of(type(domain_event))


def event_type_of(event_class: type) -> str:
    return _dotted(event_class.__qualname__)


@cache
def _dotted(qualname: str) -> str:
    return ".".join(_snake(part) for part in qualname.split("."))


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()
