"""Whether an exception means the database cannot be reached now (down, restarting, refusing
connections, or no pooled connection within the pool's wait), as opposed to a statement the
database refused. The API answers the first with 503 DEPENDENCY_UNAVAILABLE; the second stays an
error of the request. The eventsourcing library wraps the driver's errors in its own types with
the driver's error as the cause, so the whole chain is looked at."""

from __future__ import annotations

import psycopg
from psycopg_pool import PoolClosed, PoolTimeout

# SQLSTATEs of a server that is gone or not yet accepting work: connection exceptions (class
# 08), admin shutdown, crash shutdown, cannot connect now (starting up or recovering).
_UNREACHABLE_CLASS = "08"
_UNREACHABLE_STATES = frozenset({"57P01", "57P02", "57P03"})


def database_unreachable(exc: BaseException) -> bool:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if _unreachable(current):
            return True
        current = current.__cause__ or current.__context__
    return False


def _unreachable(exc: BaseException) -> bool:
    if isinstance(exc, PoolTimeout | PoolClosed | psycopg.InterfaceError):
        return True
    if not isinstance(exc, psycopg.OperationalError):
        return False
    state = exc.sqlstate
    # no SQLSTATE: the client lost or never got the connection (refused, reset, closed)
    return state is None or state.startswith(_UNREACHABLE_CLASS) or state in _UNREACHABLE_STATES
