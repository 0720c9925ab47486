"""A page shown right after a write waits for the read model to hold that write: the redirect
names the write's time (`since`, microseconds since the epoch), and the page is the self-reloading
"pending" page while the row it reads was last changed before then. A later write only moves the
row's time forward, so the wait always ends."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from litestar import Request

from api.console.rendering import Pending


def since(moment: datetime) -> str:
    """The query parameter's value for a write made at `moment` (an aggregate's modified_on)."""
    return str(int(moment.timestamp() * 1_000_000))


def wait_for_write(request: Request[Any, Any, Any], updated_at: datetime, what: str) -> None:
    """Pending while the row (last changed at `updated_at`) is older than the request's `since`."""
    asked = request.query_params.get("since", "")
    if asked.isdigit() and int(updated_at.timestamp() * 1_000_000) < int(asked):
        raise Pending(what)
