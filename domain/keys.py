"""The key-provider port: each tenant's key-encryption key (KEK), held by a provider (a local key
file, or Vault/OpenBao transit), which wraps and unwraps the data keys that encrypt secrets.

A data key never leaves the process in clear except as the provider's wrapped form; the KEK
never leaves the provider. Rotating a tenant's KEK adds a version (old wrapped keys still
unwrap); `rewrap` moves a wrapped key to the newest version without exposing it; destroying the
KEK makes every data key it wrapped (and so every secret under them) unreadable for good.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol
from uuid import UUID

from domain.errors import DependencyUnavailable


class KeyDestroyed(Exception):
    """The tenant's key-encryption key is gone (its tenant was purged): nothing it wrapped can be
    read again."""


class KeyProviderUnavailable(DependencyUnavailable):
    """The key provider could not be reached or refused the request (503: nothing was written,
    no secret can be sealed or opened until it is back)."""


@dataclass(frozen=True)
class DataKey:
    plaintext: bytes = field(repr=False)  # 32 bytes, AES-256
    wrapped: str  # the provider's ciphertext of it, safe to store


class KeyProvider(Protocol):
    """One tenant's KEK per tenant id; every method creates the KEK on first use, except
    `destroy`, and raises KeyDestroyed once it was destroyed."""

    name: str  # "local" or "openbao"

    def generate_data_key(self, tenant_id: UUID) -> DataKey: ...

    def unwrap(self, tenant_id: UUID, wrapped: str) -> bytes: ...

    def rewrap(self, tenant_id: UUID, wrapped: str) -> str: ...

    def rotate(self, tenant_id: UUID) -> int:
        """Add a new KEK version (new data keys are wrapped with it); returns its number."""
        ...

    def key_version(self, tenant_id: UUID) -> int:
        """The newest KEK version (0: no KEK yet)."""
        ...

    def wrapped_version(self, wrapped: str) -> int:
        """The KEK version a wrapped key was made with."""
        ...

    def destroy(self, tenant_id: UUID) -> None:
        """Destroy every version of the tenant's KEK (idempotent)."""
        ...
