"""What a projection is: a named consumer of the event log that owns some read-model tables."""

from __future__ import annotations

from typing import Any, Protocol

from psycopg import Cursor


class Projection(Protocol):
    """Applies events to its tables inside the runner's transaction (which also moves its
    position), so each event is applied exactly once, even across crashes and restarts."""

    @property
    def name(self) -> str: ...

    @property
    def tables(self) -> tuple[str, ...]: ...

    def apply(self, cur: Cursor[Any], event: Any) -> None:
        """Apply one domain event; ignore events this projection does not care about."""
        ...
