"""The TenantPolicy aggregate: a policy of one tenant (or a system-wide one) with immutable
versions, at most one of them active, activation, rollback and retirement as events.

Guards run in the public methods before any event is triggered (an illegal call emits nothing);
the event-decorated methods only change state, so replaying the events rebuilds the policy.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from hashlib import sha256
from typing import Any
from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.domain import Aggregate, event

from domain.errors import InvalidStateTransition, NotFound
from domain.events import EventMeta

_POLICY_NAMESPACE = uuid5(NAMESPACE_URL, "urn:acgs:policy")


def policy_aggregate_id(owner: UUID, policy_key: str) -> UUID:
    """The aggregate id of the policy `policy_key` of `owner` (the system tenant for system-wide
    policies): the same id for the same policy in every process."""
    return uuid5(_POLICY_NAMESPACE, f"{owner}:{policy_key}")


class PolicyStatus(StrEnum):
    DRAFT = "draft"  # no version active yet
    ACTIVE = "active"
    RETIRED = "retired"  # final: no decision, no new version, no activation


@dataclass(frozen=True)
class PolicyVersion:
    """One immutable version: what was submitted, the Rego that decides, how it converted."""

    number: int
    source: str
    source_format: str
    rego: str
    package: str
    conversion_status: str
    report: dict[str, Any]
    sha256: str
    created_by: str


class TenantPolicy(Aggregate):
    class Event(Aggregate.Event):
        meta: dict[str, Any]

    class Registered(Event, Aggregate.Created):
        policy_key: str
        name: str
        system_wide: bool

    class VersionAdded(Event):
        version: int
        source: str
        source_format: str
        rego: str
        package: str
        conversion_status: str
        report: dict[str, Any]
        sha256: str

    class Activated(Event):
        version: int
        previous: int | None

    class RolledBack(Event):
        version: int
        previous: int

    class Retired(Event):
        pass

    @classmethod
    def register(
        cls, *, owner: UUID, policy_key: str, name: str, system_wide: bool, meta: EventMeta
    ) -> TenantPolicy:
        return cls(
            id=policy_aggregate_id(owner, policy_key),
            policy_key=policy_key,
            name=name,
            system_wide=system_wide,
            meta=meta.as_dict(),
        )

    @event(Registered)
    def __init__(
        self, id: UUID, policy_key: str, name: str, system_wide: bool, meta: dict[str, Any]
    ) -> None:
        del id, meta
        self.policy_key = policy_key
        self.name = name
        self.system_wide = system_wide
        self.status = PolicyStatus.DRAFT
        self.active_version: int | None = None
        self.versions: dict[int, PolicyVersion] = {}

    # --- versions -----------------------------------------------------------------------------

    def add_version(
        self,
        *,
        source: str,
        source_format: str,
        rego: str,
        package: str,
        conversion_status: str,
        report: dict[str, Any],
        meta: EventMeta,
    ) -> PolicyVersion:
        """Record a new immutable version (numbered from 1); it is not active until activated."""
        self._require_live("add a version to")
        self._version_added(
            version=len(self.versions) + 1,
            source=source,
            source_format=source_format,
            rego=rego,
            package=package,
            conversion_status=conversion_status,
            report=report,
            sha256=sha256(rego.encode()).hexdigest(),
            meta=meta.as_dict(),
        )
        return self.versions[len(self.versions)]

    @event(VersionAdded)
    def _version_added(
        self,
        version: int,
        source: str,
        source_format: str,
        rego: str,
        package: str,
        conversion_status: str,
        report: dict[str, Any],
        sha256: str,
        meta: dict[str, Any],
    ) -> None:
        self.versions[version] = PolicyVersion(
            version,
            source,
            source_format,
            rego,
            package,
            conversion_status,
            report,
            sha256,
            str(meta["actor"]["sub"]),
        )

    # --- activation ---------------------------------------------------------------------------

    def activate(self, version: int, meta: EventMeta) -> bool:
        """Make `version` the active one: an activation, or a rollback when it is older than the
        active one. False (and no event) when it is active already."""
        self._require_live("activate")
        if version not in self.versions:
            raise NotFound(
                f"policy {self.policy_key} has no version {version}",
                {"policy_id": self.policy_key, "version": version, "versions": len(self.versions)},
            )
        if version == self.active_version:
            return False
        if self.active_version is not None and version < self.active_version:
            self._rolled_back(version=version, previous=self.active_version, meta=meta.as_dict())
        else:
            self._activated(version=version, previous=self.active_version, meta=meta.as_dict())
        return True

    @event(Activated)
    def _activated(self, version: int, previous: int | None, meta: dict[str, Any]) -> None:
        del previous, meta
        self.active_version = version
        self.status = PolicyStatus.ACTIVE

    @event(RolledBack)
    def _rolled_back(self, version: int, previous: int, meta: dict[str, Any]) -> None:
        del previous, meta
        self.active_version = version
        self.status = PolicyStatus.ACTIVE

    def retire(self, meta: EventMeta) -> None:
        """Take the policy out of service for good: no decisions, versions kept for the record."""
        self._require_live("retire")
        self._retired(meta=meta.as_dict())

    @event(Retired)
    def _retired(self, meta: dict[str, Any]) -> None:
        del meta
        self.status = PolicyStatus.RETIRED

    @property
    def active(self) -> PolicyVersion | None:
        if self.status is not PolicyStatus.ACTIVE or self.active_version is None:
            return None
        return self.versions[self.active_version]

    def _require_live(self, action: str) -> None:
        if self.status is PolicyStatus.RETIRED:
            raise InvalidStateTransition(
                f"cannot {action} a retired policy",
                {"policy_id": self.policy_key, "status": self.status.value},
            )
