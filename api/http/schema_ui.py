"""The OpenAPI document as a browsable page: Swagger UI at `/schema/swagger`.

Its scripts and styles are the files the `swagger-ui-py` package ships, served by this service
under `/schema/swagger/assets/`; the page loads nothing from elsewhere (no CDN, no online
validator). The page's own start-up script is a file served here too, so the page needs no inline
script (see the edge's content security policy for it). Any other page under `/schema` (say
`/schema/redoc`) is a 404 in the error envelope like every unknown path.
"""

from __future__ import annotations

import importlib.util
from html import escape
from pathlib import Path
from typing import Any

from litestar import Request, Response, Router, get
from litestar.exceptions import NotFoundException
from litestar.openapi.plugins import OpenAPIRenderPlugin
from litestar.static_files import create_static_files_router

SCHEMA_PATH = "/schema"
UI_PATH = "/swagger"
PAGE_PATH = SCHEMA_PATH + UI_PATH
ASSETS_PATH = PAGE_PATH + "/assets"
INIT_PATH = PAGE_PATH + "/init.js"
DOCUMENT_PATH = SCHEMA_PATH + "/openapi.json"

_INIT_SCRIPT = f"""window.addEventListener("load", function () {{
  window.ui = SwaggerUIBundle({{
    url: "{DOCUMENT_PATH}",
    dom_id: "#swagger-ui",
    deepLinking: true,
    validatorUrl: null,
    presets: [SwaggerUIBundle.presets.apis],
    layout: "BaseLayout"
  }});
}});
"""


def assets_dir() -> Path:
    """The Swagger UI files of the installed swagger-ui-py package (found without importing it)."""
    spec = importlib.util.find_spec("swagger_ui")
    if spec is None or not spec.submodule_search_locations:
        msg = "the swagger-ui-py package (a dependency of this service) is not installed"
        raise RuntimeError(msg)
    return Path(next(iter(spec.submodule_search_locations))) / "static"


class SwaggerUIPage(OpenAPIRenderPlugin):
    def __init__(self) -> None:
        super().__init__(path=UI_PATH)

    def render(self, request: Request[Any, Any, Any], openapi_schema: dict[str, Any]) -> bytes:
        del request  # the page is the same for every request
        title = escape(str(openapi_schema["info"]["title"]))
        return f"""<!DOCTYPE html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <title>{title}</title>
  <link rel="icon" type="image/png" href="{ASSETS_PATH}/favicon-32x32.png">
  <link rel="stylesheet" href="{ASSETS_PATH}/swagger-ui.css">
  <script src="{ASSETS_PATH}/swagger-ui-bundle.js"></script>
  <script src="{INIT_PATH}"></script>
</head>
<body>
  <div id="swagger-ui"></div>
</body>
</html>
""".encode()

    def receive_router(self, router: Router) -> None:
        router.register(init_script)
        router.register(
            create_static_files_router(
                path=UI_PATH + "/assets", directories=[assets_dir()], name="swagger-ui-assets"
            )
        )


@get(UI_PATH + "/init.js", media_type="text/javascript", sync_to_thread=False, name="swagger-init")
def init_script() -> str:
    return _INIT_SCRIPT


def schema_not_found_as_envelope(response: Response[Any]) -> Response[Any]:
    """The framework answers unknown `/schema/...` pages with an HTML 404 of its own; answer
    them like every other unknown path instead (the error handler renders the envelope)."""
    if response.status_code == 404:
        raise NotFoundException
    return response
