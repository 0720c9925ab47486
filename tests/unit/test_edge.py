"""The edge as an ASGI app around a stand-in application: what is not HTTP passes through
untouched, a revocation check the database cannot answer is a 503 (never a pass), and any
other failure is left to the server (counted as a 500). Tokens are real, signed with a key
ring here; the revocation list is the real one on a database pool that is not open (the
database away). The whole stack over HTTP: tests/e2e/test_api_cross_cutting.py."""

from __future__ import annotations

import json
import random
import re
import time
import uuid
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from api.http.edge import Edge, _critical, _identify
from commands.context import Principal
from commands.tokens import AUDIENCE, ISSUER
from domain.constitution import DEFAULT_CONSTITUTIONAL_HASH as HASH
from domain.maci import MaciRole
from infra import tracing
from infra.postgres.database import Database
from infra.postgres.sessions import RevocationList
from infra.tokens import KeyRing, TokenIssuer, TokenVerifier


class Metrics:
    def __init__(self) -> None:
        self.observed: list[tuple[str, str, int]] = []

    def observe(self, route: str, method: str, status: int, tenant: str, seconds: float) -> None:
        self.observed.append((route, method, status))


class App:
    """The application behind the edge: records what reached it, or fails."""

    def __init__(self, failure: Exception | None = None) -> None:
        self.scopes: list[dict[str, Any]] = []
        self.failure = failure

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        self.scopes.append(scope)
        if self.failure is not None:
            raise self.failure
        if scope["type"] != "http":
            return
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"{}"})


def _token(ring: KeyRing) -> str:
    now = int(time.time())
    claims = {
        "iss": ISSUER, "aud": AUDIENCE, "sub": "alice", "tenant_id": str(uuid.uuid4()),
        "maci_roles": ["AUDITOR"], "maci_role": "AUDITOR", "constitutional_hash": HASH,
        "auth_method": "ldap", "sid": "s1", "iat": now, "nbf": now, "exp": now + 60, "jti": "j1",
    }  # fmt: skip
    return TokenIssuer(ring).sign(claims)[0]


def _edge(tmp_path: Path, app: App) -> tuple[Edge, Any, KeyRing]:
    ring = KeyRing(tmp_path / "keys")
    ring.ensure()
    away = Database("host=127.0.0.1 port=1 dbname=none")  # never opened: the database is away
    api = SimpleNamespace(
        constitutional_hash=HASH,
        verifier=TokenVerifier(ring, HASH, issuer=ISSUER, audience=AUDIENCE),
        revocations=RevocationList(away),
        metrics=Metrics(),
    )
    return Edge(app, api, None), api, ring  # type: ignore[arg-type]


def _scope(path: str, authorization: str | None = None) -> dict[str, Any]:
    headers = [] if authorization is None else [(b"authorization", authorization.encode())]
    return {"type": "http", "method": "GET", "path": path, "headers": headers,
            "path_template": path}  # fmt: skip


async def _call(edge: Edge, scope: dict[str, Any]) -> list[dict[str, Any]]:
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b""}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await edge(scope, receive, send)  # type: ignore[arg-type]
    return sent


async def test_what_is_not_http_passes_through_untouched(tmp_path: Path) -> None:
    app = App()
    edge, api, _ = _edge(tmp_path, app)
    scope = {"type": "lifespan"}
    assert await _call(edge, scope) == []
    assert app.scopes == [{"type": "lifespan"}]  # no request id, no headers added
    assert api.metrics.observed == []


async def test_a_revocation_check_the_database_cannot_answer_is_a_503(tmp_path: Path) -> None:
    app = App()
    edge, api, ring = _edge(tmp_path, app)
    sent = await _call(edge, _scope("/v1/auth/me", f"Bearer {_token(ring)}"))
    assert app.scopes == []  # the request never reached the application
    start, body = sent
    assert start["status"] == 503
    headers = dict(start["headers"])
    assert headers[b"x-constitutional-hash"] == HASH.encode()
    assert b"retry-after" in headers
    assert json.loads(body["body"])["error"]["code"] == "DEPENDENCY_UNAVAILABLE"
    assert api.metrics.observed == [("/v1/auth/me", "GET", 503)]


async def test_any_other_failure_is_left_to_the_server_and_counted_as_a_500(
    tmp_path: Path,
) -> None:
    app = App(RuntimeError("a bug"))
    edge, api, _ = _edge(tmp_path, app)
    with pytest.raises(RuntimeError, match="a bug"):
        await _call(edge, _scope("/v1/auth/ldap/login"))  # a public path: no token needed
    assert len(app.scopes) == 1
    assert api.metrics.observed == [("/v1/auth/ldap/login", "GET", 500)]


class Span:
    def __init__(self) -> None:
        self.attributes: dict[str, Any] = {}

    def set_attribute(self, name: str, value: Any) -> None:
        self.attributes[name] = value


@pytest.mark.parametrize("roles", [(MaciRole.AUDITOR, MaciRole.EXECUTIVE), ()])
def test_a_request_span_names_the_principal_and_its_role_only_when_it_has_one(
    roles: tuple[MaciRole, ...],
) -> None:
    span = Span()
    tenant = uuid.uuid4()
    _identify(span, Principal("u-1", tenant, roles), HASH)
    expected = {tracing.TENANT: str(tenant), tracing.USER: "u-1", tracing.HASH: HASH}
    if roles:
        expected[tracing.ROLE] = "EXECUTIVE"  # the highest-ranked of the roles
    assert span.attributes == expected


def test_critical_writes_are_the_paths_of_the_one_pattern() -> None:
    reference = re.compile(
        r"^/v1/tenants(?:/[^/]+(?:/reactivate)?)?/?$|/polic(?:y|ies)(?:/|$)|/migrations(?:/|$)"
    )
    parts = ["v1", "tenants", "t1", "reactivate", "policy", "policies", "polic", "policyx"]
    parts += ["migrations", "migrationsx", "decisions", "", "a/b"]
    rng = random.Random(5)
    for _ in range(20_000):
        path = "/" + "/".join(rng.choice(parts) for _ in range(rng.randint(0, 5)))
        path += "/" if rng.random() < 0.3 else ""
        assert _critical(path) == bool(reference.search(path)), path
