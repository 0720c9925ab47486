"""The embedded key provider: each tenant's key-encryption key in a file of its own under the data
directory (`<data_dir>/keys/integrations/<tenant_id>.json`, mode 0600), every version kept:

    {"versions": {"1": "<base64 32 bytes>", "2": "..."}}

A wrapped data key is `local:v<N>:<base64url(nonce || AES-256-GCM(KEK_N, key, aad=tenant id))>`.
Rotation (`acgs keys rotate`, another process) adds a version; a running server re-reads the file
whenever it meets a version it does not hold, so no restart is needed. Destroying a tenant's key
overwrites its file and deletes it; the data keys it wrapped (and so the secrets under them) can
then not be read anywhere, database backups included. Back the key directory up apart from the
database, or not at all: a backup of both together defeats the purpose.
"""

from __future__ import annotations

import base64
import fcntl
import json
import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from uuid import UUID

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from domain.keys import DataKey, KeyDestroyed

PREFIX = "local:v"
NONCE_BYTES = 12


class LocalKeyFile:
    name = "local"

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    # --- the port -------------------------------------------------------------------------------

    def generate_data_key(self, tenant_id: UUID) -> DataKey:
        plaintext = AESGCM.generate_key(bit_length=256)
        version, kek = self._newest(tenant_id, create=True)
        return DataKey(plaintext, self._wrap(tenant_id, version, kek, plaintext))

    def unwrap(self, tenant_id: UUID, wrapped: str) -> bytes:
        version, blob = _parse(wrapped)
        kek = self._versions(tenant_id).get(version)
        if kek is None:
            raise KeyDestroyed(f"key version {version} of the tenant is not available")
        nonce, ciphertext = blob[:NONCE_BYTES], blob[NONCE_BYTES:]
        try:
            return AESGCM(kek).decrypt(nonce, ciphertext, str(tenant_id).encode())
        except InvalidTag:
            raise KeyDestroyed("the wrapped key does not open with the tenant's key") from None

    def rewrap(self, tenant_id: UUID, wrapped: str) -> str:
        plaintext = self.unwrap(tenant_id, wrapped)
        version, kek = self._newest(tenant_id, create=False)
        return self._wrap(tenant_id, version, kek, plaintext)

    def rotate(self, tenant_id: UUID) -> int:
        with self._locked():
            versions = self._read(tenant_id)
            newest = max(versions, default=0) + 1
            versions[newest] = AESGCM.generate_key(bit_length=256)
            self._write(tenant_id, versions)
        return newest

    def key_version(self, tenant_id: UUID) -> int:
        return max(self._versions(tenant_id), default=0)

    def wrapped_version(self, wrapped: str) -> int:
        return _parse(wrapped)[0]

    def destroy(self, tenant_id: UUID) -> None:
        with self._locked():
            path = self._path(tenant_id)
            if path.exists():
                size = path.stat().st_size
                with path.open("r+b") as handle:  # overwrite before unlinking
                    handle.write(secrets.token_bytes(max(size, 1)))
                    handle.flush()
                    os.fsync(handle.fileno())
                path.unlink()

    # --- the file -------------------------------------------------------------------------------

    def _wrap(self, tenant_id: UUID, version: int, kek: bytes, plaintext: bytes) -> str:
        nonce = secrets.token_bytes(NONCE_BYTES)
        sealed = AESGCM(kek).encrypt(nonce, plaintext, str(tenant_id).encode())
        return f"{PREFIX}{version}:{base64.urlsafe_b64encode(nonce + sealed).decode()}"

    def _newest(self, tenant_id: UUID, *, create: bool) -> tuple[int, bytes]:
        versions = self._versions(tenant_id)
        if not versions:
            if not create:
                raise KeyDestroyed("the tenant has no key")
            self.rotate(tenant_id)
            versions = self._versions(tenant_id)
        newest = max(versions)
        return newest, versions[newest]

    def _versions(self, tenant_id: UUID) -> dict[int, bytes]:
        return self._read(tenant_id)

    def _path(self, tenant_id: UUID) -> Path:
        return self.directory / f"{UUID(str(tenant_id))}.json"

    def _read(self, tenant_id: UUID) -> dict[int, bytes]:
        try:
            data = json.loads(self._path(tenant_id).read_text())
        except FileNotFoundError:
            return {}
        return {int(v): base64.b64decode(k) for v, k in data["versions"].items()}

    def _write(self, tenant_id: UUID, versions: dict[int, bytes]) -> None:
        data = {"versions": {str(v): base64.b64encode(k).decode() for v, k in versions.items()}}
        path = self._path(tenant_id)
        temporary = path.with_suffix(".tmp")
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            json.dump(data, handle)
            handle.flush()
            os.fsync(handle.fileno())
        temporary.replace(path)

    @contextmanager
    def _locked(self) -> Iterator[None]:
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        with (self.directory / ".lock").open("a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)


def _parse(wrapped: str) -> tuple[int, bytes]:
    if not wrapped.startswith(PREFIX):
        raise KeyDestroyed("not a wrapped key of the local provider")
    version, _, blob = wrapped.removeprefix(PREFIX).partition(":")
    try:
        return int(version), base64.urlsafe_b64decode(blob)
    except ValueError:
        raise KeyDestroyed("a malformed wrapped key") from None
