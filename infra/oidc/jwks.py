"""The provider's signing keys (its JWKS), cached per integration.

Keys are fetched once and kept. An ID token naming a key id (`kid`) the cache does not hold
may mean the provider rotated its keys, so the JWKS is fetched again, but at most once every
`min_refresh_seconds` (default 60 s): a stream of tokens with invented key ids cannot make the
service hammer the provider. A JWKS that cannot be fetched, or that is not a JWKS, leaves the
cached keys in place.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any, cast

import httpx
from joserfc.errors import JoseError
from joserfc.jwk import ECKey, KeySet, OKPKey, RSAKey

from infra.oidc.tls import provider_tls

MIN_REFRESH_SECONDS = 60.0
MAX_JWKS_BYTES = 256 * 1024
PublicKey = RSAKey | ECKey | OKPKey


class JwksUnavailable(Exception):
    """The provider's JWKS could not be fetched or read."""


class JwksCache:
    def __init__(
        self,
        jwks_uri: str,
        *,
        timeout: float = 5.0,
        min_refresh_seconds: float = MIN_REFRESH_SECONDS,
        fetch: Callable[[str, float], dict[str, Any]] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.jwks_uri = jwks_uri
        self._timeout = timeout
        self._min_refresh = min_refresh_seconds
        self._fetch = fetch or _fetch
        self._clock = clock
        self._lock = threading.Lock()
        self._keys: dict[str, PublicKey] = {}
        self._fetched_at: float | None = None
        self.fetches = 0

    def key(self, kid: str | None) -> PublicKey | None:
        """The signing key `kid` names (the only key when the token names none), fetching the
        JWKS again when it is unknown and the last fetch is older than the minimum interval."""
        found = self._find(kid)
        if found is not None:
            return found
        with self._lock:
            found = self._find(kid)  # another thread may have fetched meanwhile
            if found is not None:
                return found
            now = self._clock()
            if self._fetched_at is not None and now - self._fetched_at < self._min_refresh:
                return None
            self._fetched_at = now
            self._load()
        return self._find(kid)

    def _find(self, kid: str | None) -> PublicKey | None:
        if kid is not None:
            return self._keys.get(kid)
        candidates = list(self._keys.values())
        return candidates[0] if len(candidates) == 1 else None

    def _load(self) -> None:
        self.fetches += 1
        try:
            document = self._fetch(self.jwks_uri, self._timeout)
            usable = [k for k in document.get("keys", []) if _usable(k)]
            key_set = KeySet.import_key_set({"keys": usable}) if usable else KeySet([])
        except (
            httpx.HTTPError, JoseError, ValueError, TypeError, KeyError, AttributeError,
        ) as exc:  # fmt: skip
            raise JwksUnavailable(type(exc).__name__) from None
        # `_usable` let only RSA, EC and OKP keys in (a symmetric key never verifies an ID token
        # here); a KeySet names a key without a kid by its thumbprint.
        self._keys = {str(key.kid): cast("PublicKey", key) for key in key_set.keys}


def _usable(jwk: Any) -> bool:
    return (
        isinstance(jwk, dict)
        and jwk.get("kty") in ("RSA", "EC", "OKP")
        and jwk.get("use", "sig") == "sig"
        and "d" not in jwk  # a published private key is a provider fault: not used
    )


def _fetch(uri: str, timeout: float) -> dict[str, Any]:
    response = httpx.get(uri, timeout=timeout, follow_redirects=False, verify=provider_tls())
    response.raise_for_status()
    if len(response.content) > MAX_JWKS_BYTES:
        raise ValueError("JWKS too large")
    value = response.json()
    if not isinstance(value, dict):
        raise ValueError("not a JWKS")
    return value
