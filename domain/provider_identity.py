"""What an OpenID Connect or OAuth 2.0 provider says about a user once its answer was checked
(`ProviderIdentity`), and its refusal (`ProviderRefused`)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


class ProviderRefused(Exception):
    """The provider's answer is not accepted (or the provider refused); `reason` is a short
    code for the audit log, `details` safe facts (never a token)."""

    def __init__(self, reason: str, details: Mapping[str, Any] | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.details = dict(details or {})


@dataclass(frozen=True)
class ProviderIdentity:
    """Who the provider says signed in, after the adapter checked it."""

    issuer: str
    subject: str  # the provider's `sub`
    username: str
    email: str | None
    name: str | None
    values: frozenset[str]  # groups (OpenID Connect) or granted scopes (OAuth)
    refresh_token: str | None = field(default=None, repr=False)
    scopes: tuple[str, ...] = ()

    @property
    def user_key(self) -> str:
        """The service's name for the user: (issuer, subject). An issuer has no fragment, so
        the first `#` separates them unambiguously."""
        return f"{self.issuer}#{self.subject}"
