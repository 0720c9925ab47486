"""Signs access tokens with the key ring's newest active key (RS256, `kid` in the header).

A token is a compact JWS (RFC 7515) built here directly: the header segment
(`{"typ":"JWT","alg":"RS256","kid":...}`) is encoded once per signing key, the claims are JSON
without spaces in UTF-8 (the same bytes joserfc writes), and the signature is RSASSA-PKCS1-v1_5 with
SHA-256 by the key object loaded once with the ring (`cryptography`, which lets other threads run
while it signs). Any JOSE library verifies the result; `TokenVerifier` does, with joserfc.
"""

from __future__ import annotations

import json
from base64 import urlsafe_b64encode
from collections.abc import Mapping
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey
from joserfc.jwk import RSAKey

from infra.tokens.keys import KeyRing

ALGORITHM = "RS256"
_PADDING = padding.PKCS1v15()
_SHA256 = hashes.SHA256()


class TokenIssuer:
    """Implements `commands.tokens.TokenSigner`."""

    def __init__(self, keys: KeyRing) -> None:
        self._keys = keys
        # the ring's signing key -> its header segment and private key object
        self._prepared: tuple[RSAKey, bytes, RSAPrivateKey] | None = None

    def sign(self, claims: Mapping[str, Any]) -> tuple[str, str]:
        """The compact JWT and the id of the key that signed it."""
        kid, key = self._keys.signing_key()
        prepared = self._prepared
        if prepared is None or prepared[0] is not key:  # a new signing key: prepare it once
            header = {"typ": "JWT", "alg": ALGORITHM, "kid": kid}
            private = key.private_key
            if not isinstance(private, RSAPrivateKey):  # pragma: no cover - the ring loads RSA
                raise TypeError("the signing key has no RSA private part")
            prepared = (key, _b64(json.dumps(header, separators=(",", ":")).encode()), private)
            self._prepared = prepared
        _, header_segment, private = prepared
        signing_input = header_segment + b"." + _segment(claims)
        signature = private.sign(signing_input, _PADDING, _SHA256)
        return (signing_input + b"." + _b64(signature)).decode("ascii"), kid


def _segment(claims: Mapping[str, Any]) -> bytes:
    return _b64(json.dumps(claims, ensure_ascii=False, separators=(",", ":")).encode())


def _b64(data: bytes) -> bytes:
    return urlsafe_b64encode(data).rstrip(b"=")
