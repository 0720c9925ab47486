"""Envelope encryption of integration secrets (`domain.secrets.SecretSealer`).

Each integration has a data key (AES-256-GCM) of its own; the key provider wraps it with the
tenant's key-encryption key and the wrapped form is stored (`DataKeyStore`: the
`integration_data_keys` table). A secret is sealed as `acgs:v1:<base64url(nonce || ciphertext)>`
with its field path as associated data. Unwrapped data keys are cached in the process for
`cache_seconds` (60 s), so sealing and opening cost no round trip in the steady state; a key
shredded or destroyed by another process stops opening within that time, in this one at once.
"""

from __future__ import annotations

import base64
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol
from uuid import UUID, uuid4

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from domain.keys import KeyDestroyed, KeyProvider
from domain.secrets import SEALED_PREFIX, SecretUnreadable

NONCE_BYTES = 12
CACHE_SECONDS = 60.0


@dataclass(frozen=True)
class StoredKey:
    key_id: UUID
    wrapped_key: str
    kek_version: int


class DataKeyStore(Protocol):
    def insert(
        self, tenant_id: UUID, key_id: UUID, provider: str, wrapped: str, kek_version: int
    ) -> None: ...

    def wrapped(self, tenant_id: UUID, key_id: UUID) -> str | None: ...

    def of_tenant(self, tenant_id: UUID) -> list[StoredKey]: ...

    def rewrapped(self, tenant_id: UUID, key_id: UUID, wrapped: str, kek_version: int) -> None: ...

    def delete(self, tenant_id: UUID, key_id: UUID) -> None: ...

    def delete_tenant(self, tenant_id: UUID) -> int: ...


@dataclass(frozen=True)
class Rotation:
    kek_version: int
    rewrapped: int


class EnvelopeSealer:
    def __init__(
        self,
        provider: KeyProvider,
        store: DataKeyStore,
        *,
        cache_seconds: float = CACHE_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.provider = provider
        self._store = store
        self._ttl = cache_seconds
        self._clock = clock
        self._cache: dict[UUID, tuple[UUID, AESGCM, float]] = {}
        self._lock = threading.Lock()

    # --- SecretSealer ---------------------------------------------------------------------------

    def new_key(self, tenant_id: UUID) -> str:
        data_key = self.provider.generate_data_key(tenant_id)
        key_id = uuid4()
        version = self.provider.wrapped_version(data_key.wrapped)
        self._store.insert(tenant_id, key_id, self.provider.name, data_key.wrapped, version)
        self._remember(tenant_id, key_id, data_key.plaintext)
        return str(key_id)

    def seal(self, tenant_id: UUID, key_id: str, path: str, plaintext: str) -> str:
        nonce = secrets.token_bytes(NONCE_BYTES)
        sealed = self._cipher(tenant_id, key_id).encrypt(nonce, plaintext.encode(), path.encode())
        return SEALED_PREFIX + base64.urlsafe_b64encode(nonce + sealed).decode()

    def open(self, tenant_id: UUID, key_id: str, path: str, sealed: str) -> str:
        if not sealed.startswith(SEALED_PREFIX):
            raise SecretUnreadable(f"{path} is not a sealed value")
        try:
            blob = base64.urlsafe_b64decode(sealed.removeprefix(SEALED_PREFIX))
            clear = self._cipher(tenant_id, key_id).decrypt(
                blob[:NONCE_BYTES], blob[NONCE_BYTES:], path.encode()
            )
        except (InvalidTag, ValueError):
            raise SecretUnreadable(f"{path} does not open with its key") from None
        return clear.decode()

    def shred(self, tenant_id: UUID, key_id: str) -> None:
        self._store.delete(tenant_id, UUID(key_id))
        with self._lock:
            self._cache.pop(UUID(key_id), None)

    # --- the tenant's key -----------------------------------------------------------------------

    def rotate_tenant(self, tenant_id: UUID) -> Rotation:
        """A new KEK version for the tenant, and every data key of it rewrapped with it."""
        version = self.provider.rotate(tenant_id)
        count = 0
        for stored in self._store.of_tenant(tenant_id):
            wrapped = self.provider.rewrap(tenant_id, stored.wrapped_key)
            self._store.rewrapped(
                tenant_id, stored.key_id, wrapped, self.provider.wrapped_version(wrapped)
            )
            count += 1
        return Rotation(version, count)

    def destroy_tenant(self, tenant_id: UUID) -> None:
        """Crypto-shred everything of the tenant: its KEK, then its wrapped data keys."""
        self.provider.destroy(tenant_id)
        self._store.delete_tenant(tenant_id)
        with self._lock:
            for key_id in [k for k, (t, _, _) in self._cache.items() if t == tenant_id]:
                del self._cache[key_id]

    # --- cache ----------------------------------------------------------------------------------

    def _cipher(self, tenant_id: UUID, key_id: str) -> AESGCM:
        try:
            kid = UUID(key_id)
        except ValueError:
            raise SecretUnreadable("not a data key id") from None
        cached = self._cache.get(kid)
        if cached is not None and cached[0] == tenant_id and cached[2] > self._clock():
            return cached[1]
        wrapped = self._store.wrapped(tenant_id, kid)
        if wrapped is None:
            raise SecretUnreadable("the data key was shredded")
        try:
            plaintext = self.provider.unwrap(tenant_id, wrapped)
        except KeyDestroyed:
            raise SecretUnreadable("the tenant's key was destroyed") from None
        return self._remember(tenant_id, kid, plaintext)

    def _remember(self, tenant_id: UUID, key_id: UUID, plaintext: bytes) -> AESGCM:
        cipher = AESGCM(plaintext)
        with self._lock:
            self._cache[key_id] = (tenant_id, cipher, self._clock() + self._ttl)
        return cipher
