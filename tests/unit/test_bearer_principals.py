"""The edge's principal of a bearer token: the same principal object for the requests of a token
the verifier remembers, a new one for another token or once forgotten, always its claims'."""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import pytest

from api.http import auth
from api.http.auth import authenticate
from api.http.errors import InvalidToken
from commands.tokens import AUDIENCE, ISSUER
from domain.constitution import DEFAULT_CONSTITUTIONAL_HASH
from domain.maci import MaciRole
from infra.tokens import KeyRing, TokenIssuer, TokenVerifier


def _token(issuer: TokenIssuer, sub: str, tenant: uuid.UUID) -> bytes:
    now = int(time.time())
    claims = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": sub,
        "tenant_id": str(tenant),
        "maci_roles": ["MONITOR", "EXECUTIVE"],
        "maci_role": "EXECUTIVE",
        "constitutional_hash": DEFAULT_CONSTITUTIONAL_HASH,
        "auth_method": "cli",
        "sid": f"s-{sub}",
        "iat": now,
        "nbf": now,
        "exp": now + 600,
        "jti": f"j-{sub}",
    }
    token, _ = issuer.sign(claims)
    return f"Bearer {token}".encode()


@pytest.fixture
def ring(tmp_path: Path) -> KeyRing:
    ring = KeyRing(tmp_path / "keys")
    ring.ensure()
    return ring


def test_a_remembered_token_keeps_its_principal(ring: KeyRing) -> None:
    verifier = TokenVerifier(ring, DEFAULT_CONSTITUTIONAL_HASH, issuer=ISSUER, audience=AUDIENCE)
    issuer, tenant = TokenIssuer(ring), uuid.uuid4()
    alice, bob = _token(issuer, "alice", tenant), _token(issuer, "bob", tenant)
    first = authenticate(verifier, alice)
    assert authenticate(verifier, alice) is first
    assert (first.sub, first.tenant_id, first.sid, first.jti) == (
        "alice",
        tenant,
        "s-alice",
        "j-alice",
    )
    assert first.roles == (MaciRole.MONITOR, MaciRole.EXECUTIVE)
    assert first.actor() is first.actor()
    assert first.actor().sub == "alice"
    assert first.actor().roles == first.roles
    assert MaciRole.MONITOR in first.effective_roles()
    other = authenticate(verifier, bob)
    assert other is not first
    assert other.sub == "bob"


def test_a_verifier_that_remembers_nothing_gives_equal_principals(ring: KeyRing) -> None:
    verifier = TokenVerifier(
        ring, DEFAULT_CONSTITUTIONAL_HASH, issuer=ISSUER, audience=AUDIENCE, remember=0
    )
    alice = _token(TokenIssuer(ring), "alice", uuid.uuid4())
    assert authenticate(verifier, alice) == authenticate(verifier, alice)


def test_the_principals_kept_are_bounded(ring: KeyRing, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(auth, "VERIFIED_CACHE_SIZE", 2)
    monkeypatch.setattr(auth, "_principals", {})
    verifier = TokenVerifier(ring, DEFAULT_CONSTITUTIONAL_HASH, issuer=ISSUER, audience=AUDIENCE)
    issuer, tenant = TokenIssuer(ring), uuid.uuid4()
    tokens = [_token(issuer, name, tenant) for name in ("a", "b", "c")]
    for token in tokens:
        authenticate(verifier, token)
    assert len(auth._principals) == 1  # full at two: forgotten, then the third kept
    assert authenticate(verifier, tokens[0]).sub == "a"


def test_a_refused_token_gives_no_principal(ring: KeyRing) -> None:
    verifier = TokenVerifier(ring, DEFAULT_CONSTITUTIONAL_HASH, issuer=ISSUER, audience=AUDIENCE)
    with pytest.raises(InvalidToken):
        authenticate(verifier, b"Bearer a.b.c")
