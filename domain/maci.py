"""MACI roles and their rank."""

from __future__ import annotations

from enum import StrEnum


class MaciRole(StrEnum):
    EXECUTIVE = "EXECUTIVE"
    JUDICIAL = "JUDICIAL"
    LEGISLATIVE = "LEGISLATIVE"
    CONTROLLER = "CONTROLLER"
    IMPLEMENTER = "IMPLEMENTER"
    AUDITOR = "AUDITOR"
    MONITOR = "MONITOR"

    @property
    def rank(self) -> int:
        """Higher is more senior: EXECUTIVE 7 ... MONITOR 1."""
        return len(_ORDER) - _ORDER.index(self)

    def includes(self) -> frozenset[MaciRole]:
        """The roles whose permissions this role also holds (itself included)."""
        implied = {self, MaciRole.MONITOR}
        if self is MaciRole.JUDICIAL:
            implied.add(MaciRole.AUDITOR)
        return frozenset(implied)


_ORDER = list(MaciRole)
