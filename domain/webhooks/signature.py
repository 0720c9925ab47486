"""The signature of a webhook delivery: `X-ACGS-Signature: t=<unix seconds>,v1=<hex>`, where
the hex is HMAC-SHA256 under the webhook's secret of `"<t>.<body>"` (the exact bytes sent). A
receiver recomputes it, compares in constant time, and refuses a `t` too far from its clock
(replays); docs/webhooks.md has a receiver doing so with the standard library only."""

from __future__ import annotations

import hashlib
import hmac
import secrets

SIGNATURE_HEADER = "X-ACGS-Signature"
SECRET_PREFIX = "whsec_"  # noqa: S105 - a prefix, not a secret
MIN_SECRET = 16
MAX_SECRET = 256


def signature(secret: str, timestamp: int, body: bytes) -> str:
    """The header's value for `body` sent at `timestamp`."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"t={timestamp},v1={mac.hexdigest()}"


def new_secret() -> str:
    """A fresh signing secret (256 random bits)."""
    return SECRET_PREFIX + secrets.token_urlsafe(32)
