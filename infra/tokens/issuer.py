"""Signs access tokens with the key ring's newest active key (RS256, `kid` in the header)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from joserfc import jwt

from infra.tokens.keys import KeyRing

ALGORITHM = "RS256"


class TokenIssuer:
    """Implements `commands.tokens.TokenSigner`."""

    def __init__(self, keys: KeyRing) -> None:
        self._keys = keys

    def sign(self, claims: Mapping[str, Any]) -> tuple[str, str]:
        """The compact JWT and the id of the key that signed it."""
        kid, key = self._keys.signing_key()
        token = jwt.encode(
            {"alg": ALGORITHM, "kid": kid}, dict(claims), key, algorithms=[ALGORITHM]
        )
        return token, kid
