"""The one TLS context (the system's CAs) of every request to an identity provider: an HTTP
client made without one loads the CA bundle again, which costs ~100 ms a client here."""

from __future__ import annotations

import ssl
from functools import cache


@cache
def provider_tls() -> ssl.SSLContext:
    return ssl.create_default_context()
