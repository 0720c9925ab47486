"""The secret-sealing port: how commands encrypt the secret fields of a configuration.

Each integration has a data key of its own (AES-256-GCM), wrapped by its tenant's
key-encryption key (`domain.keys`). A sealed value is the text `acgs:v1:<base64url(nonce ||
ciphertext)>`; its associated data is the field's path (`config.bind_password`), so a sealed
value moved to another field does not open. Events and read models hold only sealed values
and the data key's id.
"""

from __future__ import annotations

from typing import Protocol
from uuid import UUID

SEALED_PREFIX = "acgs:v1:"


class SecretUnreadable(Exception):
    """A sealed value cannot be opened: its key was shredded or destroyed, or it was altered."""


def is_sealed(value: object) -> bool:
    return isinstance(value, str) and value.startswith(SEALED_PREFIX)


class SecretSealer(Protocol):
    def new_key(self, tenant_id: UUID) -> str:
        """Create a data key for one integration of `tenant_id`; returns its id."""
        ...

    def seal(self, tenant_id: UUID, key_id: str, path: str, plaintext: str) -> str: ...

    def open(self, tenant_id: UUID, key_id: str, path: str, sealed: str) -> str:
        """The clear value; SecretUnreadable if it cannot be."""
        ...

    def shred(self, tenant_id: UUID, key_id: str) -> None:
        """Delete the data key for good (its sealed values become unreadable)."""
        ...
