"""The OpenID Connect / OAuth relying party against a provider on 127.0.0.1 whose every answer a
test sets (a small HTTP server, as a misbehaving provider would answer): discovery that names
another issuer or is incomplete, plain OAuth endpoints, a token answer without an ID token, a
userinfo answer for another subject or not usable, a provider that cannot be reached, and the
claims that become role values. A well-behaved provider end to end:
tests/e2e/test_oidc_sign_in_api.py."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections import Counter
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from uuid import uuid4

import pytest
from joserfc import jwt
from joserfc.jwk import RSAKey

from domain.errors import DependencyUnavailable
from domain.provider_identity import ProviderRefused
from infra.oidc.relying_party import RelyingParty, RelyingPartySettings
from tests.peers.http import free_port

KEY = RSAKey.generate_key(2048, parameters={"kid": "k1"}, private=True)
AWAY = f"http://127.0.0.1:{free_port()}"  # nothing listens there


class Provider:
    """Answers by path: (status, body); a body that is not a str is sent as JSON."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.answers: dict[str, tuple[int, Any]] = {}
        self.hits: Counter[str] = Counter()

    def discovery(self, **changes: Any) -> None:
        document = {
            "issuer": self.base,
            "authorization_endpoint": f"{self.base}/authorize",
            "token_endpoint": f"{self.base}/token",
            "jwks_uri": f"{self.base}/jwks",
            "userinfo_endpoint": f"{self.base}/userinfo",
            **changes,
        }
        self.answers["/.well-known/openid-configuration"] = (
            200, {k: v for k, v in document.items() if v is not None},
        )  # fmt: skip
        self.answers["/jwks"] = (200, {"keys": [KEY.as_dict(private=False)]})

    def answer(self, path: str) -> tuple[int, bytes]:
        self.hits[path] += 1
        status, body = self.answers.get(path, (404, "not found"))
        return status, (body if isinstance(body, str) else json.dumps(body)).encode()


@pytest.fixture(scope="module")
def server() -> Iterator[Provider]:
    port = free_port()
    provider = Provider(f"http://127.0.0.1:{port}")

    class Handler(BaseHTTPRequestHandler):
        def _send(self) -> None:
            status, body = provider.answer(self.path.split("?")[0])
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:
            self._send()

        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            self._send()

        def log_message(self, *args: object) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield provider
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture
def provider(server: Provider) -> Provider:
    server.answers.clear()
    server.hits.clear()
    server.discovery()
    return server


def _party(provider: Provider, kind: str = "oidc", **config: Any) -> RelyingParty:
    base = {"client_id": "acgs", "issuer": provider.base, "timeout_seconds": 2}
    return RelyingParty(RelyingPartySettings.from_config(uuid4(), kind, {**base, **config}))


async def _refused(call: Any) -> str:
    with pytest.raises(ProviderRefused) as refused:
        await call
    return refused.value.reason


def _id_token(provider: Provider, sub: str, nonce: str) -> str:
    now = int(time.time())
    claims = {"iss": provider.base, "sub": sub, "aud": "acgs", "exp": now + 300, "iat": now,
              "nonce": nonce}  # fmt: skip
    return jwt.encode({"alg": "RS256", "kid": "k1"}, claims, KEY)


async def _identify(party: RelyingParty, iss: str | None = None) -> Any:
    return await party.identify(
        code="c-1", redirect_uri="https://acgs.test/cb", code_verifier="v" * 43, nonce="n-1",
        iss=iss,
    )  # fmt: skip


def test_an_oidc_party_always_asks_for_openid() -> None:
    integration_id = uuid4()
    settings = RelyingPartySettings.from_config(
        integration_id, "oidc", {"client_id": "acgs", "issuer": "https://login.test/", "scopes":
                                 ["profile"]}
    )  # fmt: skip
    assert settings.scopes == ("openid", "profile")
    assert settings.issuer == "https://login.test"
    assert RelyingParty(settings).integration_id == integration_id


async def test_concurrent_first_uses_read_the_discovery_document_once(provider: Provider) -> None:
    party = _party(provider)
    first, second = await asyncio.gather(party.metadata(), party.metadata())
    assert first is second
    assert provider.hits["/.well-known/openid-configuration"] == 1


async def test_plain_oauth_uses_its_configured_endpoints(provider: Provider) -> None:
    config = {"issuer": None, "authorization_url": "https://github.test/login/oauth/authorize",
              "token_url": "https://github.test/login/oauth/access_token"}  # fmt: skip
    meta = await _party(provider, "oauth", **config).metadata()
    assert (meta.issuer, meta.token_endpoint) == (
        "https://github.test", "https://github.test/login/oauth/access_token"
    )  # fmt: skip
    assert (meta.jwks_uri, meta.revocation_endpoint) == (None, None)
    unconfigured = _party(provider, "oauth", **{**config, "token_url": None})
    assert await _refused(unconfigured.metadata()) == "provider_unconfigured"


async def test_discovery_of_another_issuer_or_incomplete_is_refused(provider: Provider) -> None:
    provider.discovery(issuer="https://evil.example")
    assert await _refused(_party(provider).metadata()) == "discovery_issuer_mismatch"
    provider.discovery(token_endpoint=None)
    assert await _refused(_party(provider).metadata()) == "discovery_incomplete"


async def test_oauth_discovery_without_keys_holds_no_key_cache(provider: Provider) -> None:
    provider.discovery(jwks_uri=None)
    party = _party(provider, "oauth")
    assert (await party.metadata()).jwks_uri is None
    assert party._jwks is None


async def test_an_answer_naming_another_issuer_is_a_mix_up(provider: Provider) -> None:
    party = _party(provider)
    assert await _refused(_identify(party, iss="https://evil.example")) == "issuer_mismatch"
    assert provider.hits["/token"] == 0  # the code is never sent


async def test_a_sign_in_without_an_id_token_is_refused(provider: Provider) -> None:
    provider.answers["/token"] = (200, {"access_token": "at", "token_type": "Bearer"})
    assert await _refused(_identify(_party(provider))) == "id_token_missing"
    assert provider.hits["/userinfo"] == 0


async def test_userinfo_about_another_subject_is_refused(provider: Provider) -> None:
    token = _id_token(provider, "u-1", "n-1")
    provider.answers["/token"] = (200, {"access_token": "at", "token_type": "Bearer",
                                        "id_token": token})  # fmt: skip
    provider.answers["/userinfo"] = (200, {"sub": "u-2", "groups": ["admins"]})
    assert await _refused(_identify(_party(provider))) == "userinfo_subject_mismatch"


async def test_oauth_without_userinfo_names_no_subject(provider: Provider) -> None:
    provider.discovery(userinfo_endpoint=None)
    provider.answers["/token"] = (200, {"access_token": "at", "token_type": "Bearer"})
    assert await _refused(_identify(_party(provider, "oauth"))) == "subject_missing"


@pytest.mark.parametrize(
    ("answer", "reason"),
    [((500, {"error": "x"}), "userinfo_failed"), ((200, "not json"), "userinfo_failed"),
     ((200, ["u-1"]), "userinfo_failed")],
)  # fmt: skip
async def test_a_userinfo_answer_that_is_not_usable_is_refused(
    provider: Provider, answer: tuple[int, Any], reason: str
) -> None:
    provider.answers["/token"] = (200, {"access_token": "at-7f3a9c", "token_type": "Bearer"})
    provider.answers["/userinfo"] = answer
    with pytest.raises(ProviderRefused) as refused:
        await _identify(_party(provider, "oauth"))
    assert refused.value.reason == reason
    assert "7f3a9c" not in json.dumps(refused.value.details)  # never the access token


async def test_a_provider_that_cannot_be_reached_is_unavailable(provider: Provider) -> None:
    provider.discovery(token_endpoint=f"{AWAY}/token", revocation_endpoint=f"{AWAY}/revoke")
    party = _party(provider, "oauth")
    with pytest.raises(DependencyUnavailable):
        await party.refresh("rt-1")
    assert await party.revoke("rt-1") is False
    provider.discovery(userinfo_endpoint=f"{AWAY}/userinfo")
    provider.answers["/token"] = (200, {"access_token": "at", "token_type": "Bearer"})
    with pytest.raises(DependencyUnavailable):
        await _identify(_party(provider, "oauth"))


async def test_a_provider_without_revocation_is_not_asked(provider: Provider) -> None:
    assert await _party(provider).revoke("rt-1") is False
    assert provider.hits["/revoke"] == 0


@pytest.mark.parametrize(
    ("groups", "values"),
    [("admins", {"admins"}), (["admins", "", 7], {"admins"}), (7, set()), (None, set())],
)
async def test_the_groups_claim_becomes_role_values(
    provider: Provider, groups: Any, values: set[str]
) -> None:
    provider.answers["/token"] = (200, {"access_token": "at", "token_type": "Bearer"})
    info = {"sub": "u-1", "groups": groups} if groups is not None else {"sub": "u-1"}
    provider.answers["/userinfo"] = (200, info)
    identity = await _party(provider).refresh("rt-1")  # a refresh trusts userinfo
    assert identity.values == frozenset(values)
    assert (identity.subject, identity.refresh_token) == ("u-1", "rt-1")
