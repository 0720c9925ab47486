"""Operational routes besides health: Prometheus metrics and the token signing keys (JWKS)."""

from __future__ import annotations

from typing import Any

import anyio.to_thread
from litestar import Controller, get
from litestar.response import Response

from api.http.metrics import CONTENT_TYPE
from api.http.services import ApiServices


class OperationsController(Controller):
    tags = ["operations"]  # noqa: RUF012

    @get("/metrics", summary="Prometheus metrics (text exposition format)", media_type=CONTENT_TYPE)
    async def metrics(self, api: ApiServices) -> Response[bytes]:
        body = await anyio.to_thread.run_sync(api.metrics.render)
        # As a header: media_type alone would get a second "; charset=utf-8" from Litestar.
        return Response(body, media_type=CONTENT_TYPE, headers={"content-type": CONTENT_TYPE})

    @get(
        "/.well-known/jwks.json",
        summary="Public keys that verify the service's access tokens",
        sync_to_thread=False,
    )
    def jwks(self, api: ApiServices) -> dict[str, Any]:
        return api.keys.jwks()
