"""The web console's routes, under /console: server-rendered pages (Jinja2, autoescaped) that
call the same commands and read-model queries as the JSON API, with the signed-in principal's
permissions (`authorize` with the same permission table). Each group of pages is a module with
its `ROUTES`; this one mounts them with the CSRF check and the error page."""

from __future__ import annotations

from litestar import Router
from litestar.static_files import create_static_files_router

from api.console import (
    audit_pages,
    gap_pages,
    integration_pages,
    job_pages,
    policy_pages,
    role_mapping_pages,
    shadow_pages,
    sign_in_pages,
    tenant_pages,
)
from api.console.admission import ConsoleAdmission
from api.console.rendering import HERE, PREFIX, check_csrf, console_error

PAGE_GROUPS = (
    sign_in_pages,
    tenant_pages,
    integration_pages,
    role_mapping_pages,
    policy_pages,
    job_pages,
    shadow_pages,
    gap_pages,
    audit_pages,
)


def console_router() -> Router:
    static = create_static_files_router(
        path="/static", directories=[HERE / "static"], include_in_schema=False
    )
    return Router(
        path=PREFIX,
        route_handlers=[*(h for group in PAGE_GROUPS for h in group.ROUTES), static],
        before_request=check_csrf,
        middleware=[ConsoleAdmission],
        exception_handlers={Exception: console_error},
        include_in_schema=False,
    )
