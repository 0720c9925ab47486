"""What an event store tells the write side when it refuses a save, in the write side's terms
(every recorder raises these; none of its driver's errors reach a command).

Both are integrity errors of the eventsourcing library, so a save refused with them wrote
nothing: events, claims and releases are one transaction.
"""

from __future__ import annotations

from eventsourcing.persistence import IntegrityError


class ClaimTaken(IntegrityError):
    """A uniqueness claim (`kind`, e.g. `tenant_slug`) is held already by another aggregate."""

    def __init__(self, kind: str) -> None:
        super().__init__(f"{kind} is already claimed")
        self.kind = kind


class AggregatePinned(IntegrityError):
    """An event was appended to an aggregate whose first event belongs to another tenant (or
    that the saving tenant cannot see)."""
