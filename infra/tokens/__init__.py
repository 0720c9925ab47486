"""Service-issued access tokens: RS256 keys on disk, signing and verification."""

from infra.tokens.issuer import TokenIssuer
from infra.tokens.keys import KeyInfo, KeyRing, KeyRingError
from infra.tokens.verifier import TokenClaims, TokenRejectedError, TokenVerifier

__all__ = [
    "KeyInfo",
    "KeyRing",
    "KeyRingError",
    "TokenClaims",
    "TokenIssuer",
    "TokenRejectedError",
    "TokenVerifier",
]
