"""The Litestar application: routes, state and lifecycle."""

from __future__ import annotations

from litestar import Litestar
from litestar.datastructures import State
from litestar.openapi import OpenAPIConfig

from api.bootstrap import System
from api.http.health import HealthController


def create_app(system: System) -> Litestar:
    async def open_pool() -> None:
        await system.database.open()

    async def close_pool() -> None:
        await system.database.close()

    return Litestar(
        route_handlers=[HealthController],
        state=State({"system": system}),
        on_startup=[open_pool],
        on_shutdown=[close_pool],
        openapi_config=OpenAPIConfig(title="ACGS Enterprise API", version="1.0.0", path="/schema"),
        debug=False,
    )
