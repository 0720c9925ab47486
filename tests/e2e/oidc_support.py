"""The pieces of the OIDC tests: a browser (httpx, following redirects by hand, filling the
provider's login and consent forms), a tenant with an OIDC or OAuth integration on the test
provider, audit rows, and a token-swapping proxy in front of the provider's token endpoint for
the ID tokens the real provider would never mint."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from uuid import UUID

import httpx
import psycopg
from joserfc import jwt
from joserfc.jwk import RSAKey

from domain.maci import MaciRole
from tests.peers.http import HASH, Api
from tests.peers.oidc_provider import OidcProvider

CALLBACK_PATH = "/v1/auth/oidc/callback"
GOVERNANCE = "governance:admin"
_ACTION = re.compile(r'action="([^"]+)"')


class Browser:
    """One user agent: its own cookies (the provider's session), redirects followed by hand."""

    def __init__(self) -> None:
        self.client = httpx.Client(follow_redirects=False, timeout=30)

    def close(self) -> None:
        self.client.close()

    def authorize(self, start: str | httpx.URL, username: str, password: str) -> httpx.URL:
        """From the service's login URL (or the provider's authorization URL) through the
        provider's login and consent forms to the callback URL the provider redirects to (not
        requested)."""
        response = self.client.get(start)
        for _ in range(12):
            if response.status_code in (302, 303):
                target = response.url.join(response.headers["location"])
                if target.path == CALLBACK_PATH:
                    return target
                response = self.client.get(target)
            elif response.status_code == 200 and _ACTION.search(response.text):
                action = response.url.join(_ACTION.search(response.text).group(1))  # type: ignore[union-attr]
                form = {"username": username, "password": password}
                response = self.client.post(action, data=form if "/login" in action.path else {})
            else:
                raise AssertionError(f"unexpected {response.status_code}: {response.text[:500]}")
        raise AssertionError("the provider did not redirect back")

    def sign_in(
        self, api: Api, integration_id: str, username: str, password: str
    ) -> httpx.Response:
        callback = self.authorize(login_url(api, integration_id), username, password)
        return self.client.get(callback)


def login_url(api: Api, integration_id: str) -> str:
    return f"{api.url}/v1/auth/oidc/{integration_id}/login"


class OidcTenant:
    """A tenant with an OIDC (or OAuth) integration on the test provider and role mappings."""

    def __init__(
        self,
        api: Api,
        platform: httpx.Client,
        provider: OidcProvider,
        slug: str,
        *,
        kind: str = "oidc",
        config: dict[str, Any] | None = None,
        mappings: tuple[tuple[str, str, int], ...] = (("executives", "EXECUTIVE", 10),
                                                      ("auditors", "AUDITOR", 20)),
    ) -> None:  # fmt: skip
        self.api = api
        self.id = UUID(api.create_tenant(platform, slug)["tenant_id"])
        with api.client(api.token(MaciRole.EXECUTIVE, tenant_id=self.id)) as admin:
            self.integration_id = self._configure(admin, provider, kind, config or {}, mappings)
        api.wait_projected()

    def _configure(
        self,
        admin: httpx.Client,
        provider: OidcProvider,
        kind: str,
        config: dict[str, Any],
        mappings: tuple[tuple[str, str, int], ...],
    ) -> str:
        body = {
            "issuer": provider.issuer,
            "client_id": provider.web.client_id,
            "client_secret": provider.web.client_secret,
            "scopes": ["openid", "profile", "email", "groups"],
            **config,
        }
        if kind == "oidc":
            body.setdefault("allowed_id_token_algorithms", ["RS256"])
        created = admin.post(
            f"/v1/tenants/{self.id}/integrations",
            json={
                "integration_type": kind,
                "integration_name": f"Provider {kind}",
                "config": body,
                "constitutional_hash": HASH,
            },
        )
        assert created.status_code == 201, created.text
        integration_id = str(created.json()["integration_id"])
        source_type = "oidc_claim" if kind == "oidc" else "oauth_scope"
        for value, role, priority in mappings:
            mapped = admin.post(
                f"/v1/tenants/{self.id}/role-mappings",
                json={
                    "integration_id": integration_id,
                    "source_type": source_type,
                    "source_value": value,
                    "maci_role": role,
                    "priority": priority,
                    "constitutional_hash": HASH,
                },
            )
            assert mapped.status_code == 201, mapped.text
        return integration_id


def audit_rows(api: Api, tenant_id: UUID, action: str) -> list[dict[str, Any]]:
    api.wait_projected()
    with psycopg.connect(api.system.app_conninfo) as conn, conn.transaction():
        conn.execute("SELECT set_config('app.current_tenant_id', %s, true)", [str(tenant_id)])
        rows = conn.execute(
            "SELECT event_category, action, result, details FROM tenant_audit_log "
            "WHERE action = %s ORDER BY timestamp",
            [action],
        ).fetchall()
    return [{"category": r[0], "action": r[1], "result": r[2], "details": r[3]} for r in rows]


# --- forged ID tokens -----------------------------------------------------------------------------


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def claims_of(id_token: str) -> dict[str, Any]:
    payload = id_token.split(".")[1]
    return dict(json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))))


def signed(key: RSAKey, claims: dict[str, Any]) -> str:
    return jwt.encode({"alg": "RS256", "kid": key.kid}, claims, key)


def unsigned(claims: dict[str, Any]) -> str:
    """`alg: none`: no signature at all."""
    header = _b64(json.dumps({"alg": "none", "typ": "JWT"}).encode())
    return f"{header}.{_b64(json.dumps(claims).encode())}."


def hs256_with_public_key(key: RSAKey, claims: dict[str, Any]) -> str:
    """The key-confusion forgery: an HMAC whose secret is the provider's public key (PEM)."""
    secret = key.as_pem(private=False)
    header = _b64(json.dumps({"alg": "HS256", "kid": key.kid}).encode())
    body = _b64(json.dumps(claims).encode())
    mac = hmac.new(secret, f"{header}.{body}".encode(), hashlib.sha256).digest()
    return f"{header}.{body}.{_b64(mac)}"


Forge = Callable[[dict[str, Any]], str]


@contextmanager
def token_swapping_proxy(provider: OidcProvider, forge: list[Forge]) -> Iterator[str]:
    """A discovery document that is the provider's own but names this proxy's token endpoint;
    the proxy forwards the code exchange to the real provider and replaces the ID token in its
    answer with `forge[0](the real token's claims)`. Yields the discovery URL."""
    real = httpx.get(provider.discovery_url, timeout=10).json()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            return

        def _send(self, status: int, body: dict[str, Any]) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            doc = {**real, "token_endpoint": f"http://127.0.0.1:{port}/token"}
            self._send(200, doc)

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length", "0")))
            headers = {k: v for k, v in self.headers.items() if k.lower() in (
                "authorization", "content-type")}  # fmt: skip
            answer = httpx.post(real["token_endpoint"], content=body, headers=headers, timeout=10)
            tokens = answer.json()
            if answer.status_code == 200 and "id_token" in tokens:
                tokens["id_token"] = forge[0](claims_of(tokens["id_token"]))
            self._send(answer.status_code, tokens)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{port}/.well-known/openid-configuration"
    finally:
        server.shutdown()
        server.server_close()


def now() -> int:
    return int(time.time())
