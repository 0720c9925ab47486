"""The Litestar application: routes, dependencies, error handling, OpenAPI, and the edge."""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial
from typing import Any

import anyio
from litestar import Litestar, Request, Router
from litestar.datastructures import State
from litestar.di import Provide
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import JsonRenderPlugin
from litestar.openapi.spec import Components, OpenAPI, SecurityScheme
from litestar.routes import HTTPRoute
from litestar.types import ControllerRouterHandler

from api.bootstrap import System
from api.console.pages import console_router
from api.http.audit import (
    AuditLogController,
    PlatformAuditLogController,
    document_required_query,
)
from api.http.auth import principal_from_scope
from api.http.bodies import check_body
from api.http.decision_route import DecisionRoute
from api.http.directory import CACHE_SECONDS
from api.http.edge import Edge
from api.http.errors import handle_exception
from api.http.gaps import GapController
from api.http.health import HealthController
from api.http.identity import AuthController, PublicAuthController
from api.http.integrations import IntegrationController
from api.http.migrations import MigrationController
from api.http.oidc import OidcController
from api.http.openapi import complete, finish_once
from api.http.operations import OperationsController
from api.http.policies import DecisionController, PolicyController
from api.http.role_mappings import RoleMappingController
from api.http.saml import SamlController
from api.http.schema_ui import SCHEMA_PATH, SwaggerUIPage, schema_not_found_as_envelope
from api.http.services import ApiServices
from api.http.shadow import ShadowController
from api.http.sinks import SinkController
from api.http.tenants import TenantController
from api.http.warehouses import WarehouseController
from api.http.webhooks import WebhookController
from commands.context import Principal

MAX_BODY_BYTES = 1024 * 1024


def resolve_exception_handlers_once(app: Litestar) -> None:
    """Give every route handler its exception handlers resolved once. Litestar resolves them
    on every request (walking the handler's layers up to the app and merging their maps); the
    layers' maps are fixed once the app is built, so the result is the same every time. (A
    handler built as a bare `HTTPRouteHandler`, e.g. the OpenAPI document's, takes no attribute
    and keeps resolving them per request.)"""
    for route in app.routes:
        handlers = route.route_handlers if isinstance(route, HTTPRoute) else [route.route_handler]
        for handler in handlers:
            if hasattr(handler, "__dict__"):
                resolved = handler.resolve_exception_handlers()
                handler.resolve_exception_handlers = partial(_same, resolved)  # type: ignore[method-assign]


def _same(value: Any) -> Any:
    return value


def _finish(app: Litestar) -> OpenAPI:
    """The document as served: completed, and the audit log's required query parameters
    stated."""
    document = complete(app)
    document_required_query(document)
    return document


async def _document_finished(request: Request[Any, Any, Any]) -> None:
    """Before any page under /schema: the document finished, off the event loop (the first
    time, building it takes a good part of a second)."""
    await anyio.to_thread.run_sync(finish_once, request.app, _finish)


def create_app(
    system: System,
    *,
    extra_route_handlers: Sequence[ControllerRouterHandler] = (),
    tenant_cache_seconds: float = CACHE_SECONDS,
) -> Litestar:
    api = ApiServices.build(system, tenant_cache_seconds=tenant_cache_seconds)

    async def open_pool() -> None:
        await system.database.open()

    async def close_pool() -> None:
        await api.close()
        await system.database.close()

    def provide_api() -> ApiServices:
        return api

    def provide_principal(request: Request[Any, Any, Any], api: ApiServices) -> Principal:
        # Depending on `api` puts the two dependencies in sequence: Litestar resolves
        # independent dependencies in a task group, which costs more than both of them.
        del api
        return principal_from_scope(request.scope)

    v1 = Router(
        path="/v1",
        route_handlers=[
            TenantController,
            IntegrationController,
            PolicyController,
            DecisionController,
            AuditLogController,
            PlatformAuditLogController,
            RoleMappingController,
            AuthController,
            SinkController,
            GapController,
            ShadowController,
            MigrationController,
            WebhookController,
            WarehouseController,
        ],
        security=[{"BearerToken": []}],
        dependencies={"principal": Provide(provide_principal, sync_to_thread=False)},
    )
    app = Litestar(
        route_handlers=[
            HealthController,
            OperationsController,
            PublicAuthController,
            SamlController,
            OidcController,
            v1,
            console_router(),
            *extra_route_handlers,
        ],
        dependencies={"api": Provide(provide_api, sync_to_thread=False)},
        state=State(
            {
                "system": system,
                "api": api,
                "constitutional_hash": system.settings.constitutional_hash,
            }
        ),
        on_startup=[open_pool],
        on_shutdown=[close_pool],
        exception_handlers={Exception: handle_exception},
        before_request=check_body,
        openapi_config=OpenAPIConfig(
            title="ACGS Enterprise API",
            version="1.0.0",
            description="Tenant management of the ACGS governance backend. Every /v1 route "
            "needs a bearer token issued by the service (acgs token issue). Every "
            "state-changing request carries the constitutional hash (body field "
            "constitutional_hash or header X-Constitutional-Hash). Errors use one envelope: "
            '{"error": {"code", "message", "details", "constitutional_hash"}}.',
            path=SCHEMA_PATH,
            render_plugins=[JsonRenderPlugin(path=["/", "/openapi.json"]), SwaggerUIPage()],
            openapi_router=Router(
                SCHEMA_PATH,
                route_handlers=[],
                include_in_schema=False,
                before_request=_document_finished,
                after_request=schema_not_found_as_envelope,
            ),
            components=Components(
                security_schemes={
                    "BearerToken": SecurityScheme(
                        type="http",
                        scheme="bearer",
                        bearer_format="JWT",
                        description="RS256 access token; keys at /.well-known/jwks.json",
                    )
                }
            ),
        ),
        request_max_body_size=MAX_BODY_BYTES,
        logging_config=None,
        debug=False,
    )
    resolve_exception_handlers_once(app)
    framework = app.asgi_handler
    decisions = DecisionRoute(app, api, framework)
    app.asgi_handler = Edge(framework, api, app.asgi_router, authenticated=decisions)
    return app
