"""One API worker for the HTTP benchmark, run in its own process by `bench_api`.

    python -m tests.load.server_for_bench full PORT   the real app (acgs serve's app, access log on)
    python -m tests.load.server_for_bench bare PORT   a bare Litestar route that only verifies the
                                                  same bearer token with the same verifier, its
                                                  signature on every request (the reference)
    python -m tests.load.server_for_bench bare-remembering PORT  the same, remembering verified
                                                  tokens as the app does
    python -m tests.load.server_for_bench uncached PORT  the real app without the tenant-row cache
                                                  (every request reads the read model)

ACGS_DATABASE_URL and ACGS_DATA_DIR come from the environment (the same keys for both).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import uvicorn
from litestar import Litestar, Request, get
from litestar.exceptions import NotAuthorizedException

from api.logging import configure_logging
from api.settings import Settings
from api.tokens import key_ring, token_verifier
from infra.tokens import TokenRejectedError
from infra.tokens.verifier import VERIFIED_CACHE_SIZE


def bare_app(settings: Settings, *, remember: bool = False) -> Litestar:
    """The reference route. It checks the token's signature on every request (`remember=False`),
    the workload the benchmarks' ratio targets were set against; the app itself remembers the
    tokens it verified, and `bare-remembering` measures the bare route doing the same."""
    verifier = token_verifier(
        settings, key_ring(settings), remember=VERIFIED_CACHE_SIZE if remember else 0
    )

    @get("/bare", sync_to_thread=False)
    def bare(request: Request[Any, Any, Any]) -> dict[str, bool]:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        try:
            verifier.verify(token)
        except TokenRejectedError:
            raise NotAuthorizedException from None
        return {"ok": scheme == "Bearer"}

    return Litestar([bare], openapi_config=None, logging_config=None)


def main() -> None:
    mode, port = sys.argv[1], int(sys.argv[2])
    settings = Settings.from_env()
    configure_logging(settings.log_level)
    if mode.startswith("bare"):
        app: Any = bare_app(settings, remember=mode == "bare-remembering")
    else:
        from api.bootstrap import build  # noqa: PLC0415
        from api.http.app import create_app  # noqa: PLC0415

        system = build(settings, apply_migrations=False)
        system.start_workers()
        app = create_app(system, tenant_cache_seconds=0 if mode == "uncached" else 2.0)
    from api.cli.serve import settle_heap  # noqa: PLC0415 - as `acgs serve` does

    settle_heap()
    uvicorn.run(
        app,
        host="127.0.0.1",
        port=port,
        workers=1,
        log_level="warning",
        access_log=False,
        loop="uvloop",
        http="httptools",
    )


if __name__ == "__main__":
    main()
