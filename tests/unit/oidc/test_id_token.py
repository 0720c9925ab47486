"""ID token validation and the JWKS cache, on keys made here and a JWKS served by a function
(no provider): every rule of OpenID Connect Core 3.1.3.7 the relying party applies, and the
rate limit on refetching the JWKS for unknown key ids."""

from __future__ import annotations

import base64
import hmac
import json
import threading
from typing import Any

import pytest
from joserfc import jwt
from joserfc.jwk import ECKey, RSAKey

from infra.oidc.id_token import IdTokenRejected, IdTokenRules, validate_id_token
from infra.oidc.jwks import JwksCache, JwksUnavailable

NOW = 1_800_000_000
ISSUER = "https://login.acme.test"
RULES = IdTokenRules(ISSUER, "acgs-web", ("RS256", "ES256"))


class Jwks:
    """A JWKS endpoint as a function, counting its fetches; `keys` may change (rotation)."""

    def __init__(self, *keys: RSAKey | ECKey) -> None:
        self.keys = list(keys)
        self.fetches = 0
        self.failing = False

    def __call__(self, uri: str, timeout: float) -> dict[str, Any]:
        del uri, timeout
        self.fetches += 1
        if self.failing:
            raise ValueError("down")
        return {"keys": [k.as_dict(private=False) for k in self.keys]}


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _key(kid: str) -> RSAKey:
    return RSAKey.generate_key(2048, parameters={"kid": kid}, private=True)


KEY = _key("k1")


def _claims(**changes: Any) -> dict[str, Any]:
    claims = {
        "iss": ISSUER, "sub": "u-1", "aud": "acgs-web", "exp": NOW + 300, "iat": NOW,
        "nonce": "n-1",
    }  # fmt: skip
    claims.update(changes)
    return {k: v for k, v in claims.items() if v is not None}


def _token(claims: dict[str, Any], key: RSAKey | ECKey = KEY, alg: str = "RS256") -> str:
    return jwt.encode({"alg": alg, "kid": key.kid}, claims, key)


def _validate(token: str, jwks: Jwks | None = None, nonce: str = "n-1") -> dict[str, Any]:
    cache = JwksCache("https://login.acme.test/jwks", fetch=jwks or Jwks(KEY))
    return validate_id_token(token, RULES, cache, nonce=nonce, clock=lambda: NOW)


def _reason(token: str, **kw: Any) -> str:
    with pytest.raises(IdTokenRejected) as refused:
        _validate(token, **kw)
    return refused.value.reason


def test_a_valid_token_gives_its_claims() -> None:
    assert _validate(_token(_claims()))["sub"] == "u-1"


def test_an_ec_key_of_the_allow_list_is_accepted() -> None:
    ec = ECKey.generate_key("P-256", parameters={"kid": "e1"}, private=True)
    assert _validate(_token(_claims(), ec, "ES256"), Jwks(ec))["sub"] == "u-1"


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"iss": "https://evil.test"}, "issuer_mismatch"),
        ({"iss": ISSUER + "/"}, "issuer_mismatch"),  # compared exactly
        ({"sub": None}, "subject_missing"),
        ({"aud": "acgs-other"}, "audience_mismatch"),
        ({"aud": ["acgs-web", "acgs-other"]}, "azp_missing"),
        ({"aud": ["acgs-web", "acgs-other"], "azp": "acgs-other"}, "azp_mismatch"),
        ({"azp": "acgs-other"}, "azp_mismatch"),
        ({"exp": NOW - 61}, "expired"),
        ({"exp": None}, "times_missing"),
        ({"iat": None}, "times_missing"),
        ({"exp": "tomorrow"}, "times_missing"),
        ({"nbf": NOW + 61}, "not_yet_valid"),
        ({"iat": NOW + 61}, "issued_in_future"),
        ({"nonce": "n-2"}, "nonce_mismatch"),
        ({"nonce": None}, "nonce_mismatch"),
    ],
)
def test_each_claim_rule(changes: dict[str, Any], reason: str) -> None:
    assert _reason(_token(_claims(**changes))) == reason


def test_clock_skew_within_the_leeway_is_accepted() -> None:
    assert _validate(_token(_claims(exp=NOW - 59, nbf=NOW + 59, iat=NOW + 59)))


def test_several_audiences_with_this_client_as_azp_are_accepted() -> None:
    claims = _claims(aud=["acgs-web", "api"], azp="acgs-web")
    assert _validate(_token(claims))["azp"] == "acgs-web"


def test_hmac_and_none_are_refused_whatever_the_allow_list() -> None:
    rules = IdTokenRules(ISSUER, "acgs-web", ("HS256", "none", "RS256"))
    cache = JwksCache("x", fetch=Jwks(KEY))
    header = _b64(json.dumps({"alg": "HS256", "kid": "k1"}).encode())
    body = _b64(json.dumps(_claims()).encode())
    mac = hmac.new(KEY.as_pem(private=False), f"{header}.{body}".encode(), "sha256").digest()
    none = _b64(json.dumps({"alg": "none"}).encode())
    for forged in (f"{header}.{body}.{_b64(mac)}", f"{none}.{body}."):
        with pytest.raises(IdTokenRejected, match="algorithm_not_allowed"):
            validate_id_token(forged, rules, cache, nonce="n-1", clock=lambda: NOW)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def test_an_algorithm_outside_the_allow_list_is_refused() -> None:
    rules = IdTokenRules(ISSUER, "acgs-web", ("ES256",))
    cache = JwksCache("x", fetch=Jwks(KEY))
    with pytest.raises(IdTokenRejected, match="algorithm_not_allowed"):
        validate_id_token(_token(_claims()), rules, cache, nonce="n-1", clock=lambda: NOW)


def test_an_rsa_key_named_by_an_ec_algorithm_is_refused() -> None:
    ec = ECKey.generate_key("P-256", parameters={"kid": "k1"}, private=True)
    assert _reason(_token(_claims(), ec, "ES256"), jwks=Jwks(KEY)) == "key_type_mismatch"


def test_a_tampered_payload_fails_the_signature() -> None:
    header, _, signature = _token(_claims()).split(".")
    other = _token(_claims(sub="admin")).split(".")[1]
    assert _reason(f"{header}.{other}.{signature}") == "bad_signature"


@pytest.mark.parametrize("token", ["", "a.b", "a.b.c.d", "not-a-jwt", "x" * 20000])
def test_malformed_tokens_are_refused(token: str) -> None:
    assert _reason(token) == "malformed"


def test_an_unknown_kid_refetches_the_jwks_at_most_once_a_minute() -> None:
    jwks, clock = Jwks(KEY), Clock()
    cache = JwksCache("x", fetch=jwks, clock=clock, min_refresh_seconds=60)
    assert cache.key("k1") is not None
    assert jwks.fetches == 1
    for _ in range(50):  # invented key ids: no storm of fetches
        assert cache.key("invented") is None
    assert jwks.fetches == 1
    rotated = _key("k2")
    jwks.keys = [KEY, rotated]
    assert cache.key("k2") is None  # still inside the interval
    clock.now = 61
    assert cache.key("k2") is not None  # the provider rotated: found after one fetch
    assert jwks.fetches == 2
    assert cache.key("k1") is not None
    assert jwks.fetches == 2


def test_a_failed_fetch_keeps_the_cached_keys() -> None:
    jwks, clock = Jwks(KEY), Clock()
    cache = JwksCache("x", fetch=jwks, clock=clock)
    assert cache.key("k1") is not None
    jwks.failing = True
    clock.now = 120
    with pytest.raises(JwksUnavailable):
        cache.key("other")
    assert cache.key("k1") is not None


def test_private_and_symmetric_keys_in_a_jwks_are_ignored() -> None:
    def fetch(uri: str, timeout: float) -> dict[str, Any]:
        del uri, timeout
        oct_key = {"kty": "oct", "k": "c2VjcmV0", "kid": "s"}
        return {"keys": [KEY.as_dict(private=True), oct_key]}

    cache = JwksCache("x", fetch=fetch)
    assert cache.key("k1") is None
    assert cache.key("s") is None


@pytest.mark.parametrize("token", ["x.y.z", "e30.e30.", "bm90LWpzb24.e30.c2ln"])
def test_three_parts_that_are_no_jws_are_malformed(token: str) -> None:
    jwks = Jwks(KEY)
    assert _reason(token, jwks=jwks) == "malformed"
    assert jwks.fetches == 0  # refused before any key is looked up


def test_a_provider_whose_keys_cannot_be_fetched_is_named() -> None:
    jwks = Jwks(KEY)
    jwks.failing = True
    assert _reason(_token(_claims()), jwks=jwks) == "jwks_unavailable"


def test_a_token_naming_no_key_uses_the_only_key_and_none_of_several() -> None:
    published = [_key("unnamed").as_dict(private=False)]
    del published[0]["kid"]  # a provider with one key may leave its id out

    def fetch(uri: str, timeout: float) -> dict[str, Any]:
        del uri, timeout
        return {"keys": published}

    assert JwksCache("x", fetch=fetch).key(None) is not None  # the only key
    published.append(KEY.as_dict(private=False))
    crowded = JwksCache("x", fetch=fetch)
    assert crowded.key(None) is None  # which of two? neither
    assert crowded.key("k1") is not None


def test_callers_waiting_on_one_fetch_share_it() -> None:
    """Two threads ask for a key id not yet known: one fetches, the other waits for it and
    finds the key without a second fetch (the interval would refuse one)."""
    second_waiting = threading.Event()

    class Lock:
        def __init__(self) -> None:
            self.inner = threading.Lock()
            self.entered = 0

        def __enter__(self) -> None:
            self.entered += 1
            if self.entered == 2:
                second_waiting.set()
            self.inner.acquire()

        def __exit__(self, *exc: object) -> None:
            self.inner.release()

    plain = Jwks(KEY)

    def slow(uri: str, timeout: float) -> dict[str, Any]:
        assert second_waiting.wait(5), "the second caller never came"
        return plain(uri, timeout)

    cache = JwksCache("x", fetch=slow, min_refresh_seconds=60)
    cache._lock = Lock()  # type: ignore[assignment]
    found: list[object] = []
    threads = [threading.Thread(target=lambda: found.append(cache.key("k1"))) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert len(found) == 2
    assert all(key is not None for key in found)
    assert plain.fetches == 1
