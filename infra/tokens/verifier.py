"""Verifies the service's access tokens.

Only RS256 with a key of the ring is accepted: `alg: none`, HMAC (including HS256 signed with the
public key), other algorithms, unknown or retired key ids, bad signatures, expired or not-yet-valid
tokens, another issuer or audience, missing claims and a constitutional hash other than this
deployment's are all refused with `TokenRejectedError`.

A token verified once is remembered (at most `remember` of them, 4,096 by default, the oldest
forgotten first), so the same bearer token on the next request skips the RSA signature check and the
decoding: it is accepted again only while the key that verified it is still the ring's key of that
id (a retired or replaced key sends it through the full check, which refuses it) and its time
claims still hold (checked on every use). The remembered entry is keyed by the whole token text,
signature included, so only the exact bytes that were verified can hit it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any
from uuid import UUID

from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import GuestProtocol, RSAKey

from domain.maci import MaciRole
from infra.tokens.issuer import ALGORITHM
from infra.tokens.keys import KeyRing

MAX_TOKEN_BYTES = 8192
VERIFIED_CACHE_SIZE = 4096
_REQUIRED = (
    "sub",
    "tenant_id",
    "maci_roles",
    "maci_role",
    "constitutional_hash",
    "auth_method",
    "sid",
    "iat",
    "nbf",
    "exp",
    "jti",
    "iss",
    "aud",
)


class TokenRejectedError(Exception):
    """The token is not acceptable; `reason` is safe to show (it never contains the token)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class TokenClaims:
    sub: str
    tenant_id: UUID
    roles: tuple[MaciRole, ...]
    primary_role: MaciRole
    auth_method: str
    sid: str
    jti: str
    issued_at: int
    expires_at: int


class TokenVerifier:
    def __init__(
        self,
        keys: KeyRing,
        constitutional_hash: str,
        *,
        issuer: str,
        audience: str,
        leeway_seconds: int = 0,
        clock: Callable[[], float] = time.time,
        remember: int = VERIFIED_CACHE_SIZE,
    ) -> None:
        self._keys = keys
        self._hash = constitutional_hash
        self._issuer = issuer
        self._audience = audience
        self._leeway = leeway_seconds
        self._clock = clock
        # token text -> (its claims, its not-before, the key id and key that verified it)
        self._verified: dict[str, tuple[TokenClaims, int, str, RSAKey]] = {}
        self._capacity = remember  # 0: verify every token in full, every time

    def verify(self, token: str) -> TokenClaims:
        remembered = self._verified.get(token)
        if remembered is not None:
            claims, nbf, kid, key = remembered
            if self._keys.verification_key(kid) is key:
                self._check_times(claims.expires_at, nbf, claims.issued_at)
                return claims
            self._verified.pop(token, None)
        if len(token) > MAX_TOKEN_BYTES or token.count(".") != 2:
            raise TokenRejectedError("malformed token")
        used: list[tuple[str, RSAKey]] = []
        try:
            decoded = jwt.decode(token, partial(self._key_for, used=used), algorithms=[ALGORITHM])
        except TokenRejectedError:
            raise
        except (JoseError, ValueError, TypeError) as exc:
            raise TokenRejectedError(_reason(exc)) from None
        claims = self._claims(decoded.claims)
        if self._capacity:
            self._remember(token, (claims, decoded.claims["nbf"], *used[-1]))
        return claims

    def _remember(self, token: str, entry: tuple[TokenClaims, int, str, RSAKey]) -> None:
        verified = self._verified
        while len(verified) >= self._capacity:
            try:  # another thread may evict the same entry first
                verified.pop(next(iter(verified)))
            except (KeyError, StopIteration, RuntimeError):
                break
        verified[token] = entry

    def _key_for(self, obj: GuestProtocol, used: list[tuple[str, RSAKey]]) -> RSAKey:
        # the algorithm is checked before: `jwt.decode` refuses any but ALGORITHM first
        kid = obj.headers().get("kid")
        key = self._keys.verification_key(kid)
        if key is None:
            raise TokenRejectedError("unknown key id")
        used.append((str(kid), key))  # a key was found: the id is a string
        return key

    def _claims(self, claims: dict[str, Any]) -> TokenClaims:
        missing = [c for c in _REQUIRED if c not in claims]
        if missing:
            raise TokenRejectedError(f"missing claims: {', '.join(missing)}")
        exp, nbf, iat = claims["exp"], claims["nbf"], claims["iat"]
        if not all(isinstance(v, int) and not isinstance(v, bool) for v in (exp, nbf, iat)):
            raise TokenRejectedError("time claims must be integers")
        self._check_times(exp, nbf, iat)
        if claims["iss"] != self._issuer or claims["aud"] != self._audience:
            raise TokenRejectedError("wrong issuer or audience")
        if claims["constitutional_hash"] != self._hash:
            raise TokenRejectedError("constitutional_hash claim does not match")
        try:
            tenant_id = UUID(str(claims["tenant_id"]))
            roles = tuple(MaciRole(r) for r in claims["maci_roles"])
            primary = MaciRole(claims["maci_role"])
        except (ValueError, TypeError):
            raise TokenRejectedError("malformed tenant_id or roles") from None
        if not roles or primary not in roles or not isinstance(claims["maci_roles"], list):
            raise TokenRejectedError("malformed roles")
        strings = (claims["sub"], claims["auth_method"], claims["sid"], claims["jti"])
        if not all(isinstance(s, str) and s for s in strings):
            raise TokenRejectedError("malformed subject or identifiers")
        return TokenClaims(
            sub=claims["sub"],
            tenant_id=tenant_id,
            roles=roles,
            primary_role=primary,
            auth_method=claims["auth_method"],
            sid=claims["sid"],
            jti=claims["jti"],
            issued_at=iat,
            expires_at=exp,
        )

    def _check_times(self, exp: int, nbf: int, iat: int) -> None:
        now = int(self._clock())
        if exp <= now - self._leeway:
            raise TokenRejectedError("token expired")
        if nbf > now + self._leeway or iat > now + self._leeway:
            raise TokenRejectedError("token not yet valid")


def _reason(exc: Exception) -> str:
    name = type(exc).__name__
    return {
        "BadSignatureError": "bad signature",
        "UnsupportedAlgorithmError": "unsupported algorithm",
        "MissingAlgorithmError": "unsupported algorithm",
        "DecodeError": "malformed token",
        "InvalidPayloadError": "malformed token",
    }.get(name, "invalid token")
