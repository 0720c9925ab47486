"""Where a SAML or OIDC sign-in started from the console lands: the browser comes back from the
identity provider to the service's own assertion consumer or callback, which hands the issued
tokens to the console session cookie (never to the URL) and sends the browser on to a console
page.

The page is named by the sign-in button as `return_to`; only a path of this service's console is
accepted (`console_path`): no scheme, no host, no `//` or `\\`, no `..` segment, no control
character, so the redirect can never leave the service (no open redirect)."""

from __future__ import annotations

from typing import Any
from urllib.parse import unquote

from litestar import Request, Response
from litestar.datastructures import Cookie

from api.console.rendering import PREFIX, go, session_cookie
from api.console.session import ConsoleSession
from commands.sign_in import Issued

MAX_PATH = 500


def console_path(value: str | None) -> str | None:
    """`value` when it is a path of the console on this service, else None."""
    if not value or len(value) > MAX_PATH:
        return None
    if value != PREFIX and not value.startswith(PREFIX + "/"):
        return None
    decoded = unquote(value)
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in decoded) or "\\" in decoded:
        return None
    if "//" in decoded or ".." in decoded.split("/") or "#" in value:
        return None
    return value  # starts with "/console": neither a scheme nor a host


def landing(
    request: Request[Any, Any, Any], issued: Issued, path: str, cookies: list[Cookie]
) -> Response[Any]:
    """303 to the console page `path` (checked again) with a new console session holding the
    issued tokens (a new CSRF seed too: nothing planted before the sign-in is worth anything
    after), and the flow's own `cookies` (its spent binding cookie)."""
    session = ConsoleSession.fresh().signed_in(issued.access_token, issued.refresh_token)
    target = console_path(path) or PREFIX + "/"
    return go(target, [session_cookie(request, session), *cookies])
