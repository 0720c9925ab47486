"""A role mapping (`RoleMapping`, events `rolemapping.*`): members of a directory group (or
holders of a SAML attribute, OAuth scope, OIDC claim value) of one integration get a MACI role.

Inputs are checked in the public methods, all problems reported at once; an LDAP group DN is
stored normalised (`domain.identity.normalise_dn`), so it compares case-insensitively with the
groups a directory returns. The event-decorated methods only change state.
"""

from __future__ import annotations

import hashlib
from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from domain.errors import DomainError, InvalidStateTransition, ValidationFailed
from domain.events import EventMeta
from domain.identity import normalise_dn
from domain.maci import MaciRole


class RoleMappingExists(DomainError):
    """The integration maps this source already (one source, one role per integration)."""

    code = "ROLE_MAPPING_EXISTS"


SOURCE_TYPES = ("ldap_group", "saml_attribute", "oauth_scope", "oidc_claim")
MAX_PRIORITY = 1_000_000
MAX_SOURCE_VALUE = 500


def _source_value(source_type: str | None, value: object, problems: list[dict[str, str]]) -> str:
    if not isinstance(value, str) or not value.strip():
        problems.append({"field": "source_value", "message": "must be a non-empty string"})
        return ""
    if len(value) > MAX_SOURCE_VALUE:
        problems.append(
            {"field": "source_value", "message": f"must be at most {MAX_SOURCE_VALUE} characters"}
        )
        return ""
    if source_type == "ldap_group":
        normalised = normalise_dn(value)
        if "=" not in normalised:
            problems.append(
                {"field": "source_value", "message": "must be a group DN, e.g. cn=admins,dc=x"}
            )
        return normalised
    return value.strip()


def _source_type(value: object, problems: list[dict[str, str]]) -> str | None:
    if value not in SOURCE_TYPES:
        problems.append({"field": "source_type", "message": f"must be one of {list(SOURCE_TYPES)}"})
        return None
    return str(value)


def _role(value: object, problems: list[dict[str, str]]) -> MaciRole | None:
    if isinstance(value, str) and value in MaciRole.__members__:
        return MaciRole(value)
    problems.append(
        {"field": "maci_role", "message": f"must be one of {[r.value for r in MaciRole]}"}
    )
    return None


def _priority(value: object, problems: list[dict[str, str]]) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_PRIORITY:
        problems.append(
            {"field": "priority", "message": f"must be an integer from 0 to {MAX_PRIORITY}"}
        )
        return 0
    return value


def _raise(problems: list[dict[str, str]]) -> None:
    if problems:
        summary = "; ".join(f"{p['field']}: {p['message']}" for p in problems)
        raise ValidationFailed(summary[:300], {"fields": problems})


class RoleMapping(Aggregate):
    class Event(Aggregate.Event):
        meta: dict[str, Any]

    class Created(Event, Aggregate.Created):
        integration_id: str
        source_type: str
        source_value: str
        maci_role: str
        priority: int

    class Updated(Event):
        source_value: str
        maci_role: str
        priority: int
        updated_fields: list[str]

    class Deleted(Event):
        pass

    @classmethod
    def define(
        cls,
        *,
        mapping_id: UUID,
        integration_id: UUID,
        source_type: object,
        source_value: object,
        maci_role: object,
        priority: object,
        meta: EventMeta,
    ) -> RoleMapping:
        problems: list[dict[str, str]] = []
        kind = _source_type(source_type, problems)
        value = _source_value(kind, source_value, problems)
        role = _role(maci_role, problems)
        rank = _priority(priority, problems)
        _raise(problems)
        if kind is None or role is None:  # reported by _raise already
            raise ValidationFailed("invalid role mapping", {"fields": problems})
        return cls(
            id=mapping_id,
            integration_id=str(integration_id),
            source_type=kind,
            source_value=value,
            maci_role=role.value,
            priority=rank,
            meta=meta.as_dict(),
        )

    @event(Created)
    def __init__(
        self,
        id: UUID,
        integration_id: str,
        source_type: str,
        source_value: str,
        maci_role: str,
        priority: int,
        meta: dict[str, Any],
    ) -> None:
        del id
        self.tenant_id = UUID(meta["tenant_id"])
        self.integration_id = UUID(integration_id)
        self.source_type = source_type
        self.source_value = source_value
        self.maci_role = MaciRole(maci_role)
        self.priority = priority
        self.deleted = False

    def change(self, changes: dict[str, Any], meta: EventMeta) -> list[str]:
        """A partial update of `source_value`, `maci_role`, `priority`; the changed fields."""
        self._require_live("update")
        problems: list[dict[str, str]] = []
        unknown = sorted(set(changes) - {"source_value", "maci_role", "priority"})
        problems += [{"field": f, "message": "read-only or unknown field"} for f in unknown]
        if not changes:
            problems.append({"field": "body", "message": "no fields to update"})
        value, role, rank = self.source_value, self.maci_role, self.priority
        if "source_value" in changes:
            value = _source_value(self.source_type, changes["source_value"], problems)
        if "maci_role" in changes:
            role = _role(changes["maci_role"], problems) or role
        if "priority" in changes:
            rank = _priority(changes["priority"], problems)
        _raise(problems)
        updated = [
            name
            for name, old, new in (
                ("source_value", self.source_value, value),
                ("maci_role", self.maci_role, role),
                ("priority", self.priority, rank),
            )
            if old != new
        ]
        if updated:
            self._updated(
                source_value=value,
                maci_role=role.value,
                priority=rank,
                updated_fields=updated,
                meta=meta.as_dict(),
            )
        return updated

    @event(Updated)
    def _updated(
        self,
        source_value: str,
        maci_role: str,
        priority: int,
        updated_fields: list[str],
        meta: dict[str, Any],
    ) -> None:
        del updated_fields, meta
        self.source_value = source_value
        self.maci_role = MaciRole(maci_role)
        self.priority = priority

    def delete(self, meta: EventMeta) -> None:
        self._require_live("delete")
        self._deleted(meta=meta.as_dict())

    @event(Deleted)
    def _deleted(self, meta: dict[str, Any]) -> None:
        del meta
        self.deleted = True

    @property
    def claim(self) -> tuple[str, str]:
        """The uniqueness claim of this mapping's source within its tenant."""
        digest = hashlib.sha256(self.source_value.encode()).hexdigest()[:32]
        return ("role_mapping", f"{self.integration_id}:{self.source_type}:{digest}")

    def _require_live(self, action: str) -> None:
        if self.deleted:
            raise InvalidStateTransition(
                f"cannot {action} a deleted role mapping", {"status": "deleted"}
            )
