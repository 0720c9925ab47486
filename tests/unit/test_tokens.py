"""Token keys, signing and verification without any service."""

from __future__ import annotations

import base64
import json
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from joserfc import jwt
from joserfc.jwk import RSAKey

from commands.tokens import AUDIENCE, ISSUER
from domain.constitution import DEFAULT_CONSTITUTIONAL_HASH
from domain.maci import MaciRole
from infra.tokens import KeyRing, KeyRingError, TokenIssuer, TokenRejectedError, TokenVerifier
from infra.tokens.keys import _write_private

HASH = DEFAULT_CONSTITUTIONAL_HASH


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _claims(**overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    claims = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": "alice",
        "tenant_id": str(uuid.uuid4()),
        "maci_roles": ["JUDICIAL", "MONITOR"],
        "maci_role": "JUDICIAL",
        "constitutional_hash": HASH,
        "auth_method": "cli",
        "sid": "s1",
        "iat": now,
        "nbf": now,
        "exp": now + 60,
        "jti": "j1",
    }
    claims.update(overrides)
    return claims


@pytest.fixture
def ring(tmp_path: Path) -> KeyRing:
    ring = KeyRing(tmp_path / "keys", clock=Clock())
    ring.ensure()
    return ring


def _verifier(ring: KeyRing, **kwargs: Any) -> TokenVerifier:
    return TokenVerifier(ring, HASH, issuer=ISSUER, audience=AUDIENCE, **kwargs)


def test_a_signed_token_verifies_to_its_claims(ring: KeyRing) -> None:
    claims = _claims()
    token, kid = TokenIssuer(ring).sign(claims)
    verified = _verifier(ring).verify(token)
    assert verified.sub == "alice"
    assert str(verified.tenant_id) == claims["tenant_id"]
    assert verified.roles == (MaciRole.JUDICIAL, MaciRole.MONITOR)
    assert verified.primary_role is MaciRole.JUDICIAL
    assert kid == ring.signing_key()[0]


def test_a_token_is_the_same_bytes_joserfc_writes(ring: KeyRing) -> None:
    """The issuer builds the JWS itself (header encoded once per key); RS256 signatures are
    deterministic, so the token must equal joserfc's for the same header and claims."""
    claims = _claims(sub="zoë")  # a non-ASCII claim is written the same way
    token, kid = TokenIssuer(ring).sign(claims)
    expected = jwt.encode(
        {"alg": "RS256", "kid": kid}, claims, ring.signing_key()[1], algorithms=["RS256"]
    )
    assert token == expected


def test_the_issuer_signs_with_a_key_added_while_it_runs(tmp_path: Path) -> None:
    clock = Clock()
    ring = KeyRing(tmp_path / "keys", clock=clock)
    old = ring.ensure()
    issuer, verifier = TokenIssuer(ring), _verifier(ring)
    assert issuer.sign(_claims())[1] == old
    new = KeyRing(tmp_path / "keys").add()  # the CLI, another process
    clock.now += 1.0  # the directory is listed again
    token, kid = issuer.sign(_claims())
    assert kid == new
    assert jwt.decode(token, ring.verification_key(new)).header["kid"] == new
    assert verifier.verify(token).sub == "alice"


def test_private_keys_are_owner_only(ring: KeyRing) -> None:
    for pem in (ring.directory / "active").iterdir():
        assert pem.stat().st_mode & 0o077 == 0


@pytest.mark.parametrize(
    ("overrides", "reason"),
    [
        ({"exp": -1}, "token expired"),  # exp and nbf: seconds from now
        ({"nbf": 60}, "token not yet valid"),
        ({"constitutional_hash": "ffffffffffffffff"}, "constitutional_hash claim does not match"),
        ({"aud": "elsewhere"}, "wrong issuer or audience"),
        ({"maci_roles": [], "maci_role": "JUDICIAL"}, "malformed roles"),
        ({"sub": ""}, "malformed subject or identifiers"),
        ({"exp": True}, "time claims must be integers"),
    ],
)
def test_bad_claims_are_rejected_with_a_reason(
    ring: KeyRing, overrides: dict[str, Any], reason: str
) -> None:
    now = int(time.time())
    relative = {k: now + v for k, v in overrides.items() if k in {"exp", "nbf"} and v is not True}
    token, _ = TokenIssuer(ring).sign(_claims(**{**overrides, **relative}))
    with pytest.raises(TokenRejectedError) as rejected:
        _verifier(ring).verify(token)
    assert rejected.value.reason == reason


def test_missing_claims_are_named(ring: KeyRing) -> None:
    claims = _claims()
    del claims["jti"], claims["sid"]
    token, _ = TokenIssuer(ring).sign(claims)
    with pytest.raises(TokenRejectedError, match="missing claims: sid, jti"):
        _verifier(ring).verify(token)


def test_leeway_tolerates_small_clock_skew(ring: KeyRing) -> None:
    token, _ = TokenIssuer(ring).sign(_claims(nbf=int(time.time()) + 5))
    assert _verifier(ring, leeway_seconds=30).verify(token).sub == "alice"


def test_a_new_key_signs_and_the_old_one_verifies_until_retired(tmp_path: Path) -> None:
    clock = Clock()
    ring = KeyRing(tmp_path / "keys", clock=clock)
    old = ring.ensure()
    verifier = _verifier(ring)
    old_token, _ = TokenIssuer(ring).sign(_claims())
    assert verifier.verify(old_token).sub == "alice"

    admin = KeyRing(tmp_path / "keys")  # the CLI, another process
    new = admin.add()
    assert new != old
    clock.now += 0.5  # an unknown kid forces a re-read of the directory (at most 10/s)
    new_token, kid = TokenIssuer(admin).sign(_claims())
    assert kid == new
    assert verifier.verify(new_token).sub == "alice"
    assert verifier.verify(old_token).sub == "alice"

    admin.retire(old)
    clock.now += 0.1  # not yet re-read: the directory is checked at most four times a second
    assert verifier.verify(old_token).sub == "alice"
    clock.now += 0.25
    with pytest.raises(TokenRejectedError, match="unknown key id"):
        verifier.verify(old_token)
    assert [(k.kid, k.status, k.signing) for k in admin.describe()] == [
        (old, "retired", False),
        (new, "active", True),
    ]


def test_the_last_active_key_cannot_be_retired(ring: KeyRing) -> None:
    only = ring.signing_key()[0]
    with pytest.raises(KeyRingError, match="only active key"):
        ring.retire(only)
    with pytest.raises(KeyRingError, match="not a key id"):
        ring.retire("../../etc/passwd")


def test_jwks_has_only_public_parts(ring: KeyRing) -> None:
    (key,) = ring.jwks()["keys"]
    assert key["kty"] == "RSA"
    assert key["alg"] == "RS256"
    assert key["use"] == "sig"
    assert set(key) & {"d", "p", "q", "dp", "dq", "qi"} == set()


def test_a_remembered_token_still_expires_and_only_its_exact_text_is_remembered(
    ring: KeyRing,
) -> None:
    clock = Clock()
    clock.now = time.time()
    verifier = _verifier(ring, clock=clock)
    token, _ = TokenIssuer(ring).sign(_claims())
    assert verifier.verify(token).sub == "alice"
    assert verifier.verify(token).sub == "alice"  # the second time from memory
    head, payload, signature = token.split(".")
    flipped = signature[:-2] + ("A" if signature[-2] != "A" else "B") + signature[-1]
    with pytest.raises(TokenRejectedError, match="bad signature"):
        verifier.verify(f"{head}.{payload}.{flipped}")
    clock.now += 61  # past exp (60 s after issue)
    with pytest.raises(TokenRejectedError, match="token expired"):
        verifier.verify(token)


def test_a_remembered_token_is_checked_again_when_its_key_id_names_another_key(
    tmp_path: Path,
) -> None:
    """A key id reused for other key material (a restored or replaced key file) must not let a
    token verified by the old material through."""
    clock = Clock()
    ring = KeyRing(tmp_path / "keys", clock=clock)
    kid = ring.ensure()
    verifier = _verifier(ring)
    token, _ = TokenIssuer(ring).sign(_claims())
    assert verifier.verify(token).sub == "alice"
    other = KeyRing(tmp_path / "other", clock=clock)
    other_kid = other.ensure()
    for pem in (tmp_path / "keys" / "active").iterdir():
        pem.write_bytes(
            (tmp_path / "other" / "active" / pem.name.replace(kid, other_kid)).read_bytes()
        )
    ring._stamp = ()  # as if the directory listing changed
    clock.now += 2
    with pytest.raises(TokenRejectedError, match="bad signature"):
        verifier.verify(token)


def test_retiring_a_key_that_is_not_active_is_refused(ring: KeyRing) -> None:
    kid = ring.signing_key()[0]
    unknown = "20200101T000000000000-deadbeef"
    with pytest.raises(KeyRingError, match=f"no active key {unknown}"):
        ring.retire(unknown)
    assert ring.signing_key()[0] == kid


def test_a_ring_without_keys_cannot_sign(tmp_path: Path) -> None:
    empty = KeyRing(tmp_path / "none", clock=Clock())
    with pytest.raises(KeyRingError, match="no active signing key"):
        empty.signing_key()
    with pytest.raises(KeyRingError):
        TokenIssuer(empty).sign(_claims())


def test_a_key_file_gone_between_listing_and_reading_is_skipped(tmp_path: Path) -> None:
    ring = KeyRing(tmp_path / "keys", clock=Clock())
    kid = ring.ensure()
    vanished = "29990101T000000000000-0badf00d"  # newer: it would sign if it were readable
    (ring.active_dir / f"{vanished}.pem").symlink_to(tmp_path / "nowhere.pem")
    assert ring.signing_key()[0] == kid
    assert ring.verification_key(vanished) is None
    assert [k["kid"] for k in ring.jwks()["keys"]] == [kid]


def test_a_key_that_cannot_be_written_leaves_no_file_behind(ring: KeyRing) -> None:
    target = ring.active_dir / "taken.pem"
    (target / "occupied").mkdir(parents=True)  # a non-empty directory where the key would go
    before = sorted(p.name for p in ring.active_dir.iterdir())
    with pytest.raises(IsADirectoryError):
        _write_private(target, b"-----BEGIN PRIVATE KEY-----")
    assert sorted(p.name for p in ring.active_dir.iterdir()) == before  # no .tmp- file


def test_a_token_of_another_algorithm_is_rejected(ring: KeyRing) -> None:
    kid, key = ring.signing_key()
    same = RSAKey.import_key({k: v for k, v in key.as_dict(private=True).items() if k != "alg"})
    token = jwt.encode({"alg": "RS512", "kid": kid}, _claims(), same, algorithms=["RS512"])
    with pytest.raises(TokenRejectedError, match="unsupported algorithm"):
        _verifier(ring).verify(token)


@pytest.mark.parametrize("alg", ["none", "None", "NONE", "HS256", "RS512", "ES256"])
def test_a_token_naming_any_other_algorithm_is_refused_before_its_key_is_looked_up(
    ring: KeyRing, alg: str
) -> None:
    kid = ring.signing_key()[0]
    head = base64.urlsafe_b64encode(json.dumps({"alg": alg, "kid": kid}).encode()).rstrip(b"=")
    body = base64.urlsafe_b64encode(json.dumps(_claims()).encode()).rstrip(b"=")
    with pytest.raises(TokenRejectedError) as refused:
        _verifier(ring).verify(f"{head.decode()}.{body.decode()}.c2ln")
    assert refused.value.reason == "unsupported algorithm", refused.value.reason


def test_without_memory_every_token_is_verified_in_full(ring: KeyRing) -> None:
    verifier = _verifier(ring, remember=0)
    token, _ = TokenIssuer(ring).sign(_claims())
    assert verifier.verify(token).sub == "alice"
    assert verifier._verified == {}


def test_the_memory_of_verified_tokens_is_bounded(ring: KeyRing) -> None:
    verifier = _verifier(ring, remember=2)
    tokens = [TokenIssuer(ring).sign(_claims(jti=f"j{n}"))[0] for n in range(3)]
    for token in tokens:
        assert verifier.verify(token).sub == "alice"
    assert list(verifier._verified) == tokens[1:]  # the oldest forgotten


def test_an_entry_another_thread_evicted_first_does_not_stop_the_remembering(
    ring: KeyRing,
) -> None:
    class Raced(dict[str, Any]):
        def pop(self, key: str, *default: Any) -> Any:
            super().pop(key, *default)
            raise KeyError(key)  # as when another thread popped it between our two steps

    verifier = _verifier(ring, remember=1)
    verifier._verified = Raced()
    first, second = (TokenIssuer(ring).sign(_claims(jti=j))[0] for j in ("a", "b"))
    verifier.verify(first)
    assert verifier.verify(second).jti == "b"
    assert list(verifier._verified) == [second]
