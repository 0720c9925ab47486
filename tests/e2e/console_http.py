"""The console reached over plain HTTP (no browser): a client whose session cookie holds a
token of the service, posting forms with the session's CSRF token and the constitutional hash
as the pages' hidden fields do. For what the server renders and refuses; the browser suites
keep what needs JavaScript."""

from __future__ import annotations

import html
import re
from typing import Any
from uuid import UUID, uuid4

import httpx

from api.console.session import COOKIE, CSRF_FIELD, ConsoleSession
from domain.maci import MaciRole
from tests.peers.http import HASH, Api


class Console:
    """One signed-in visitor of /console."""

    def __init__(self, api: Api, token: str) -> None:
        self.session = ConsoleSession.fresh().signed_in(token, None)
        self.client = httpx.Client(
            base_url=f"{api.url}/console",
            cookies={COOKIE: self.session.encode()},
            timeout=30,
        )

    def get(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.client.get(path, **kwargs)

    def post(self, path: str, data: dict[str, str] | None = None, **kwargs: Any) -> httpx.Response:
        form = {CSRF_FIELD: self.session.csrf_token, "constitutional_hash": HASH, **(data or {})}
        return self.client.post(path, data=form, **kwargs)

    def close(self) -> None:
        self.client.close()


def console_of(api: Api, *roles: MaciRole, tenant_id: UUID | None = None) -> Console:
    """A visitor signed in with a token of `roles` (EXECUTIVE) of the tenant (the platform)."""
    token = api.token(*roles) if tenant_id is None else api.token(*roles, tenant_id=tenant_id)
    return Console(api, token)


def new_tenant(api: Api, platform: httpx.Client, prefix: str) -> UUID:
    return UUID(api.create_tenant(platform, f"{prefix}-{uuid4().hex[:10]}")["tenant_id"])


def by_id(response: httpx.Response, element_id: str) -> str | None:
    """The text of the page's element with this id (tags inside it dropped), None if absent."""
    found = re.search(
        rf'<(\w+)[^>]*\bid="{re.escape(element_id)}"[^>]*>(.*?)</\1>', response.text, re.S
    )
    if found is None:
        return None
    return html.unescape(re.sub(r"<[^>]+>", "", found.group(2))).strip()


def errors_of(response: httpx.Response) -> list[str]:
    """The texts of every error the page shows (the error page's, each field's, the form's)."""
    found = re.findall(r'<p class="error"[^>]*>(.*?)</p>', response.text, re.S)
    return [html.unescape(re.sub(r"<[^>]+>", "", f)).strip() for f in found]
