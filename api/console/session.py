"""The console's session: one cookie, and the CSRF token derived from it.

The cookie (`HttpOnly`, `SameSite=Lax`, `Path=/console`, `Secure` when the request came over TLS
or through a proxy that says so with `X-Forwarded-Proto: https`) holds the service's own access
token, the refresh token of a directory sign-in, and a random CSRF seed. Scripts cannot read it.
The CSRF token every form carries is an HMAC of a fixed label keyed with the seed (a
synchroniser token that needs no server state): a page of another site can neither read the
cookie nor the token, so its forged POST is refused. The seed is kept across refreshes, so an
open form stays valid while its tokens rotate.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass, replace
from typing import Any

COOKIE = "acgs_console"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"
_LABEL = b"acgs-console-csrf"
MAX_COOKIE = 3800  # a browser keeps at most 4096 bytes a cookie


@dataclass(frozen=True)
class ConsoleSession:
    seed: str
    access_token: str | None = None
    refresh_token: str | None = None

    @classmethod
    def fresh(cls) -> ConsoleSession:
        return cls(seed=secrets.token_urlsafe(32))

    @property
    def csrf_token(self) -> str:
        return hmac.new(self.seed.encode(), _LABEL, hashlib.sha256).hexdigest()

    def accepts(self, supplied: str | None) -> bool:
        return bool(supplied) and hmac.compare_digest(self.csrf_token, str(supplied))

    def signed_in(self, access_token: str, refresh_token: str | None) -> ConsoleSession:
        # a new seed at sign-in: a token planted before it is worth nothing after
        return replace(
            ConsoleSession.fresh(), access_token=access_token, refresh_token=refresh_token
        )

    def encode(self) -> str:
        body = {"s": self.seed, "a": self.access_token, "r": self.refresh_token}
        return base64.urlsafe_b64encode(json.dumps(body).encode()).decode().rstrip("=")

    @classmethod
    def decode(cls, value: str | None) -> ConsoleSession | None:
        if not value or len(value) > MAX_COOKIE:
            return None
        try:
            padded = value + "=" * (-len(value) % 4)
            body: Any = json.loads(base64.urlsafe_b64decode(padded.encode()))
        except ValueError:
            return None
        if not isinstance(body, dict):
            return None
        seed, access, refresh = body.get("s"), body.get("a"), body.get("r")
        if not isinstance(seed, str) or len(seed) < 32:
            return None
        if not isinstance(access, str | None) or not isinstance(refresh, str | None):
            return None
        return cls(seed=seed, access_token=access, refresh_token=refresh)
