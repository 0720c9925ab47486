"""ID token validation (OpenID Connect Core 1.0, section 3.1.3.7), with joserfc.

Checked in this order, the first failure naming the reason: the token is a compact JWS; its
algorithm is in the integration's allow-list (never `none`, never an HMAC algorithm, whatever
the list says: an HMAC "signed" with the provider's public key is the classic key-confusion
forgery); its key id names a key of the provider's JWKS (refetched, rate-limited, when unknown)
of the algorithm's key type; the signature; `iss` equals the integration's issuer; `aud`
holds this client, and when it holds other audiences too `azp` is present; `azp`, when present,
is this client; `exp` is in the future, `nbf` (when present) and `iat` not in the future, each
with `leeway_seconds` of clock skew; `nonce` equals the one this sign-in sent.
"""

from __future__ import annotations

import hmac
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import Any

from joserfc import jws, jwt
from joserfc.errors import JoseError

from infra.oidc.jwks import JwksCache, JwksUnavailable

LEEWAY_SECONDS = 60
_KEY_TYPES = {"RS": "RSA", "PS": "RSA", "ES": "EC", "Ed": "OKP"}
MAX_ID_TOKEN_BYTES = 16 * 1024


class IdTokenRejected(Exception):
    """The ID token is not accepted; `reason` is a short code for the audit log."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class IdTokenRules:
    issuer: str
    client_id: str
    algorithms: Collection[str]
    leeway_seconds: int = LEEWAY_SECONDS


def validate_id_token(
    token: str,
    rules: IdTokenRules,
    keys: JwksCache,
    *,
    nonce: str,
    clock: Callable[[], float] = time.time,
) -> dict[str, Any]:
    """The ID token's claims, or IdTokenRejected naming the first check that failed."""
    if not isinstance(token, str) or len(token) > MAX_ID_TOKEN_BYTES or token.count(".") != 2:
        raise IdTokenRejected("malformed")
    try:
        header = jws.extract_compact(token.encode()).protected
    except (JoseError, ValueError, TypeError):
        raise IdTokenRejected("malformed") from None
    alg = header.get("alg")
    if not isinstance(alg, str) or not _allowed(alg, rules.algorithms):
        raise IdTokenRejected("algorithm_not_allowed")
    kid = header.get("kid")
    try:
        key = keys.key(kid if isinstance(kid, str) else None)
    except JwksUnavailable:
        raise IdTokenRejected("jwks_unavailable") from None
    if key is None:
        raise IdTokenRejected("unknown_key")
    if key.key_type != _KEY_TYPES[alg[:2]]:
        raise IdTokenRejected("key_type_mismatch")
    try:
        claims = jwt.decode(token, key, algorithms=[alg]).claims
    except (JoseError, ValueError, TypeError):
        raise IdTokenRejected("bad_signature") from None
    _check_claims(claims, rules, nonce, int(clock()))
    return claims


def _allowed(alg: str, allow_list: Collection[str]) -> bool:
    return alg in allow_list and alg[:2] in _KEY_TYPES


def _check_claims(claims: dict[str, Any], rules: IdTokenRules, nonce: str, now: int) -> None:
    leeway = rules.leeway_seconds
    if claims.get("iss") != rules.issuer:
        raise IdTokenRejected("issuer_mismatch")
    sub = claims.get("sub")
    if not isinstance(sub, str) or not sub:
        raise IdTokenRejected("subject_missing")
    aud = claims.get("aud")
    audiences = [aud] if isinstance(aud, str) else aud
    if not isinstance(audiences, list) or rules.client_id not in audiences:
        raise IdTokenRejected("audience_mismatch")
    azp = claims.get("azp")
    if len(audiences) > 1 and azp is None:
        raise IdTokenRejected("azp_missing")
    if azp is not None and azp != rules.client_id:
        raise IdTokenRejected("azp_mismatch")
    times = (claims.get("exp"), claims.get("iat"), claims.get("nbf", 0))
    if not all(_is_time(v) for v in times):
        raise IdTokenRejected("times_missing")
    exp, iat, nbf = (float(v) for v in times if v is not None)
    if exp <= now - leeway:
        raise IdTokenRejected("expired")
    if nbf > now + leeway:
        raise IdTokenRejected("not_yet_valid")
    if iat > now + leeway:
        raise IdTokenRejected("issued_in_future")
    given = claims.get("nonce")
    if not isinstance(given, str) or not hmac.compare_digest(given.encode(), nonce.encode()):
        raise IdTokenRejected("nonce_mismatch")


def _is_time(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)
