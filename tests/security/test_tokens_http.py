"""Every forged, stale or misdirected token is 401 over real HTTP."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import time
import uuid
from typing import Any
from uuid import UUID

import httpx
import pytest
from joserfc import jwt
from joserfc.jwk import RSAKey

from api.tokens import token_verifier
from commands.tokens import AUDIENCE, ISSUER
from domain.maci import MaciRole
from domain.tenancy import SYSTEM_TENANT_ID
from infra.tokens import KeyRing, TokenIssuer
from infra.tokens.keys import CHECK_INTERVAL_SECONDS, FORCED_CHECK_INTERVAL_SECONDS
from tests.peers.http import HASH, Api, ManualClock

pytestmark = [pytest.mark.security, pytest.mark.e2e, pytest.mark.postgres]


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _claims(**overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    claims = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": "attacker",
        "tenant_id": str(SYSTEM_TENANT_ID),
        "maci_roles": ["EXECUTIVE"],
        "maci_role": "EXECUTIVE",
        "constitutional_hash": HASH,
        "auth_method": "cli",
        "sid": uuid.uuid4().hex,
        "iat": now,
        "nbf": now,
        "exp": now + 600,
        "jti": str(uuid.uuid4()),
    }
    claims.update(overrides)
    return {k: v for k, v in claims.items() if v is not None}


def _signed(api: Api, **overrides: Any) -> str:
    token, _ = TokenIssuer(api.services.keys).sign(_claims(**overrides))
    return token


def _unsigned(header: dict[str, Any], claims: dict[str, Any], signature: bytes = b"") -> str:
    head = _b64(json.dumps(header).encode())
    body = _b64(json.dumps(claims).encode())
    return f"{head}.{body}.{_b64(signature)}"


# A body that would be valid for each write, so a refusal can only come from the token.
_BODIES: dict[tuple[str, str], dict[str, Any]] = {
    ("POST", "/v1/tenants"): {
        "tenant_name": "Evil Corp",
        "tenant_slug": "evil-corp",
        "admin_email": "e@evil.example.com",
        "constitutional_hash": HASH,
    },
    ("PATCH", "/v1/tenants/{tenant_id}"): {"tenant_name": "Evil", "constitutional_hash": HASH},
}
_ANY_TENANT = str(SYSTEM_TENANT_ID)


def _fill(path: str) -> str:
    """A concrete path: the system tenant for {tenant_id}, a made-up id for any other parameter
    (the token is refused before the id is looked at)."""
    known = {"tenant_id": _ANY_TENANT, "integration_id": _ANY_TENANT, "version": "1"}
    known["job_id"] = _ANY_TENANT
    return re.sub(r"\{(\w+)\}", lambda m: known.get(m[1], "x0000000000000001"), path)


def secured_operations(api: Api) -> list[tuple[str, str]]:
    """Every operation of the served OpenAPI document that needs a bearer token."""
    with api.client() as anonymous:
        paths = anonymous.get("/schema").json()["paths"]
    found = [
        (method.upper(), path)
        for path, operations in paths.items()
        for method, operation in operations.items()
        if operation.get("security")
    ]
    # every /v1 operation is secured, and there are some (else this test proves nothing)
    public = {  # exchange credentials (or a provider's answer) for tokens
        "/v1/auth/ldap/login",
        "/v1/auth/token/refresh",
        "/v1/auth/oidc/{integration_id}/login",
        "/v1/auth/oidc/callback",
    }
    # called by a browser or an IdP (the SLO path's POST is secured, its GET is not)
    public |= {"/v1/auth/saml/acs", "/v1/auth/saml/{integration_id}/metadata",
               "/v1/auth/saml/{integration_id}/login"}  # fmt: skip
    assert {p for _, p in found} == {p for p in paths if p.startswith("/v1/") and p not in public}
    assert len(found) >= 6
    return found


def path_variants() -> list[tuple[str, str]]:
    """Spellings of protected routes that a careless edge might route without checking (sent
    as absolute URLs, so the client does not read `//v1` as a host name)."""
    return [
        ("GET", "/v1/tenants/"),
        ("GET", "//v1/tenants"),
        ("PATCH", f"//v1//tenants/{_ANY_TENANT}"),
        ("GET", "/v1//tenants"),
        ("GET", "/v1%2Ftenants"),
        ("GET", f"/v1/tenants%2F{_ANY_TENANT}"),
        ("GET", f"/v1/tenants/{_ANY_TENANT}/"),
        ("DELETE", f"/v1/tenants/{_ANY_TENANT}/"),
        ("POST", f"/v1/tenants/{_ANY_TENANT}/reactivate/"),
    ]


def _assert_401(api: Api, token: str, code: str = "INVALID_TOKEN") -> None:
    """Every secured operation of the schema, and the path variants, refuse `token` with 401."""
    targets = [
        (method, _fill(path), _BODIES.get((method, path)))
        for method, path in secured_operations(api)
    ]
    targets += [(method, path, None) for method, path in path_variants()]
    with api.client(token) as client:
        for method, path, body in targets:
            response = client.request(
                method, api.url + path, json=body, headers={"X-Constitutional-Hash": HASH}
            )
            assert response.status_code == 401, (method, path, response.text)
            assert response.json()["error"]["code"] == code, (method, path)
            assert response.headers["www-authenticate"].startswith("Bearer"), (method, path)


def test_a_valid_token_is_accepted(api: Api) -> None:
    with api.client(_signed(api)) as client:
        assert client.get("/v1/tenants").status_code == 200


@pytest.mark.parametrize(
    "authorization", [None, "Basic YWRtaW46YWRtaW4=", "Bearer", "bearer", "Token abc"]
)
def test_missing_or_non_bearer_credentials_are_unauthenticated(
    api: Api, authorization: str | None
) -> None:
    headers = {"Authorization": authorization} if authorization is not None else {}
    targets = [(method, _fill(path)) for method, path in secured_operations(api)]
    with api.client() as anonymous:
        for method, path in [*targets, *path_variants()]:
            response = anonymous.request(
                method,
                api.url + path,
                json=_BODIES.get((method, path)),
                headers={**headers, "X-Constitutional-Hash": HASH},
            )
            assert response.status_code == 401, (method, path, response.text)
            assert response.json()["error"]["code"] == "UNAUTHENTICATED", (method, path)
            assert response.headers["www-authenticate"].startswith("Bearer"), (method, path)


def test_alg_none_is_refused(api: Api) -> None:
    kid, _ = api.services.keys.signing_key()
    for alg in ("none", "None", "NONE"):
        _assert_401(api, _unsigned({"alg": alg, "kid": kid, "typ": "JWT"}, _claims()))


def test_hs256_signed_with_the_public_key_is_refused(api: Api) -> None:
    kid, key = api.services.keys.signing_key()
    public_pem = RSAKey.import_key(key.as_dict(private=False)).as_pem(private=False)
    header = {"alg": "HS256", "kid": kid, "typ": "JWT"}
    head = _b64(json.dumps(header).encode())
    body = _b64(json.dumps(_claims()).encode())
    signature = hmac.new(public_pem, f"{head}.{body}".encode(), hashlib.sha256).digest()
    _assert_401(api, f"{head}.{body}.{_b64(signature)}")


def test_expired_and_not_yet_valid_tokens_are_refused(api: Api) -> None:
    now = int(time.time())
    _assert_401(api, _signed(api, iat=now - 1000, nbf=now - 1000, exp=now - 1))
    _assert_401(api, _signed(api, nbf=now + 300))
    _assert_401(api, _signed(api, iat=now + 300, nbf=now + 300, exp=now + 900))


def test_unknown_and_injected_key_ids_are_refused(api: Api) -> None:
    stranger = RSAKey.generate_key(2048, private=True)
    for kid in ("20990101T000000000000-deadbeef", "../../keys/active/x", "' OR 1=1 --", ""):
        token = jwt.encode({"alg": "RS256", "kid": kid}, _claims(), stranger)
        _assert_401(api, token)
    no_kid = jwt.encode({"alg": "RS256"}, _claims(), stranger)
    _assert_401(api, no_kid)


def test_a_tampered_payload_is_refused(api: Api, unique: str) -> None:
    head, _, signature = _signed(api, maci_roles=["MONITOR"], maci_role="MONITOR").split(".")
    forged_body = _b64(json.dumps(_claims(sub=f"x-{unique}")).encode())
    _assert_401(api, f"{head}.{forged_body}.{signature}")


def test_wrong_constitutional_hash_claim_is_refused(api: Api) -> None:
    _assert_401(api, _signed(api, constitutional_hash="0000000000000000"))
    _assert_401(api, _signed(api, constitutional_hash=None))


def test_wrong_issuer_audience_or_malformed_claims_are_refused(api: Api) -> None:
    _assert_401(api, _signed(api, iss="someone-else"))
    _assert_401(api, _signed(api, aud="another-api"))
    _assert_401(api, _signed(api, tenant_id=None))
    _assert_401(api, _signed(api, tenant_id="not-a-uuid"))
    _assert_401(api, _signed(api, maci_roles=["GOD"], maci_role="GOD"))
    _assert_401(api, _signed(api, maci_roles=["MONITOR"], maci_role="EXECUTIVE"))
    _assert_401(api, _signed(api, exp="tomorrow"))
    _assert_401(api, "not.a.token")
    _assert_401(api, "x" * 10_000)


def test_a_token_of_an_unknown_tenant_is_refused(api: Api) -> None:
    _assert_401(api, _signed(api, tenant_id=str(uuid.uuid4())))


def test_tokens_of_deactivated_and_purged_tenants_are_refused(
    api: Api, platform: httpx.Client, unique: str
) -> None:
    hdr = {"X-Constitutional-Hash": HASH}
    for immediate in (False, True):
        tenant_id = UUID(api.create_tenant(platform, f"gone{int(immediate)}-{unique}")["tenant_id"])
        token = api.token(MaciRole.EXECUTIVE, tenant_id=tenant_id)
        with api.client(token) as own:
            assert own.get(f"/v1/tenants/{tenant_id}").status_code == 200
        response = platform.delete(
            f"/v1/tenants/{tenant_id}", headers=hdr, params={"immediate": str(immediate).lower()}
        )
        assert response.status_code == 202
        _assert_401(api, token)


def test_a_retired_key_stops_verifying_without_a_restart(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The running server's key ring, on a clock the test moves: no real waiting, no flakiness.
    clock = ManualClock(1000.0)  # small: tenths of a second add up exactly enough
    keys = KeyRing(api.services.keys.directory, clock=clock)
    monkeypatch.setattr(api.services, "keys", keys)
    monkeypatch.setattr(api.services, "verifier", token_verifier(api.system.settings, keys))
    old_kid, _ = keys.signing_key()
    old_token = api.token(MaciRole.AUDITOR)
    new_kid = keys.add()
    # the running server picks up the new key as soon as a token names it (a forced look at
    # the directory, at most ten a second)
    clock.now += FORCED_CHECK_INTERVAL_SECONDS
    new_token = api.token(MaciRole.AUDITOR)
    assert json.loads(base64.urlsafe_b64decode(new_token.split(".")[0] + "=="))["kid"] == new_kid
    with api.client(new_token) as client:
        assert client.get("/v1/tenants").status_code == 200
    with api.client() as anonymous:
        kids = {k["kid"] for k in anonymous.get("/.well-known/jwks.json").json()["keys"]}
    assert {old_kid, new_kid} <= kids
    keys.retire(old_kid)
    with api.client(old_token) as old, api.client(new_token) as new:
        clock.now += CHECK_INTERVAL_SECONDS - 0.01  # the listing is re-read at most once a second
        assert old.get("/v1/tenants").status_code == 200
        clock.now += 0.02  # a second after the last look: the retirement is seen
        refused = old.get("/v1/tenants")
        assert refused.status_code == 401, refused.text
        assert refused.json()["error"]["code"] == "INVALID_TOKEN"
        assert new.get("/v1/tenants").status_code == 200
    with api.client() as anonymous:
        kids = {k["kid"] for k in anonymous.get("/.well-known/jwks.json").json()["keys"]}
    assert old_kid not in kids
    assert new_kid in kids
