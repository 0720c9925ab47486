"""The signing keys: RSA-2048 private keys as PEM files, one per key id, under a directory.

    {keys_dir}/active/{kid}.pem    verify tokens; the newest one also signs
    {keys_dir}/retired/{kid}.pem   kept for the record; tokens signed with them are refused

The CLI (`acgs token keys add|retire`) changes the directory; a running server notices the change
without a restart: it lists the directory at most four times a second, and at once (at most ten
times a second) when a token names an unknown key id, and reloads when the set of keys changed, so
a retired key's tokens are refused within a second in every process.
Key ids never become file paths on the verification side: an id from a token header is only
looked up among the keys already loaded, so `kid` injection reaches nothing.
"""

from __future__ import annotations

import os
import re
import secrets
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from joserfc.jwk import RSAKey

KID_PATTERN = re.compile(r"^\d{8}T\d{6}(\d{6})?-[0-9a-f]{8}$")  # creation time (UTC), random
RSA_KEY_BITS = 2048
CHECK_INTERVAL_SECONDS = 0.25
FORCED_CHECK_INTERVAL_SECONDS = 0.1


class KeyRingError(RuntimeError):
    """The key directory cannot serve the request (no such key, last active key, bad id)."""


@dataclass(frozen=True)
class KeyInfo:
    kid: str
    status: str  # "active" or "retired"
    created_at: datetime
    signing: bool


class KeyRing:
    def __init__(self, directory: Path, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.directory = directory
        self._clock = clock
        self._lock = threading.Lock()
        self._public: dict[str, RSAKey] = {}
        self._signing: tuple[str, RSAKey] | None = None
        self._stamp: tuple[str, ...] | None = None
        self._checked_at = float("-inf")

    @property
    def active_dir(self) -> Path:
        return self.directory / "active"

    @property
    def retired_dir(self) -> Path:
        return self.directory / "retired"

    # --- administration (the CLI) ---------------------------------------------------------------

    def ensure(self) -> str:
        """The signing key id, creating the first key if there is none."""
        active = self._active_kids()
        return active[-1] if active else self.add()

    def add(self) -> str:
        """Create a key; being the newest, it signs from now on (older keys still verify)."""
        kid = f"{datetime.now(UTC):%Y%m%dT%H%M%S%f}-{secrets.token_hex(4)}"  # sorts by age
        private = rsa.generate_private_key(public_exponent=65537, key_size=RSA_KEY_BITS)
        pem = private.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        self._prepare_dirs()
        _write_private(self.active_dir / f"{kid}.pem", pem)
        return kid

    def retire(self, kid: str) -> None:
        """Stop accepting tokens signed with `kid`; the last active key cannot be retired."""
        if not KID_PATTERN.fullmatch(kid):
            msg = f"not a key id: {kid!r}"
            raise KeyRingError(msg)
        active = self._active_kids()
        if kid not in active:
            msg = f"no active key {kid}"
            raise KeyRingError(msg)
        if len(active) == 1:
            msg = f"{kid} is the only active key: add a new key first (acgs token keys add)"
            raise KeyRingError(msg)
        self._prepare_dirs()
        (self.active_dir / f"{kid}.pem").rename(self.retired_dir / f"{kid}.pem")

    def describe(self) -> list[KeyInfo]:
        active = self._active_kids()
        retired = _kids(self.retired_dir)
        infos = [KeyInfo(k, "active", _created(k), signing=k == active[-1]) for k in active]
        infos += [KeyInfo(k, "retired", _created(k), signing=False) for k in retired]
        return sorted(infos, key=lambda i: i.kid)

    # --- use (signing and verification) ----------------------------------------------------------

    def signing_key(self) -> tuple[str, RSAKey]:
        self.refresh()
        if self._signing is None:
            msg = f"no active signing key in {self.active_dir} (acgs token keys add)"
            raise KeyRingError(msg)
        return self._signing

    def verification_key(self, kid: object) -> RSAKey | None:
        """The public key of an active `kid`; re-reads the directory once if it is unknown."""
        if not isinstance(kid, str):
            return None
        self.refresh()
        key = self._public.get(kid)
        if key is None and self.refresh(force=True):
            key = self._public.get(kid)
        return key

    def jwks(self) -> dict[str, Any]:
        self.refresh()
        return {"keys": [self._public[k].as_dict(private=False) for k in sorted(self._public)]}

    def refresh(self, *, force: bool = False) -> bool:
        """Reload if the directory changed; checked at most four times a second (ten if forced)."""
        now = self._clock()
        interval = FORCED_CHECK_INTERVAL_SECONDS if force else CHECK_INTERVAL_SECONDS
        if now - self._checked_at < interval:
            return False
        with self._lock:
            self._checked_at = now
            stamp = tuple(self._active_kids())  # a listing: mtimes are too coarse to compare
            if stamp == self._stamp:
                return False
            self._load()
            self._stamp = stamp
            return True

    def _load(self) -> None:
        public: dict[str, RSAKey] = {}
        signing: tuple[str, RSAKey] | None = None
        for kid in self._active_kids():
            try:
                pem = (self.active_dir / f"{kid}.pem").read_bytes()
            except FileNotFoundError:  # retired between listing and reading
                continue
            private = RSAKey.import_key(pem, parameters={"kid": kid, "alg": "RS256", "use": "sig"})
            public[kid] = RSAKey.import_key(private.as_dict(private=False))
            signing = (kid, private)
        self._public, self._signing = public, signing

    def _active_kids(self) -> list[str]:
        return _kids(self.active_dir)

    def _prepare_dirs(self) -> None:
        for path in (self.directory, self.active_dir, self.retired_dir):
            path.mkdir(parents=True, exist_ok=True)
            path.chmod(0o700)


def _kids(folder: Path) -> list[str]:
    try:
        names = [p.stem for p in folder.iterdir() if p.suffix == ".pem"]
    except FileNotFoundError:
        return []
    return sorted(n for n in names if KID_PATTERN.fullmatch(n))


def _created(kid: str) -> datetime:
    return datetime.strptime(kid[:15], "%Y%m%dT%H%M%S").replace(tzinfo=UTC)


def _write_private(path: Path, data: bytes) -> None:
    """Write with mode 0600 and rename into place, so a reader never sees half a key."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".key")
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        Path(tmp).rename(path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
