"""Break-glass accounts: local accounts that may sign in only while a tenant's directory cannot
be reached. Off unless a file names them (`ACGS_BREAK_GLASS_FILE`):

    {"accounts": [{"tenant_slug": "acme", "username": "breakglass-admin",
                   "password_scrypt": "scrypt$16384$8$1$<salt>$<hash>",
                   "maci_roles": ["EXECUTIVE"]}]}

Passwords are stored only as scrypt hashes (`hash_password`); verification takes the same time
whether or not the account exists.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
from dataclasses import dataclass
from pathlib import Path

from domain.maci import MaciRole

_N, _R, _P = 16384, 8, 1


def hash_password(password: str, *, salt: bytes | None = None) -> str:
    salt = salt or os.urandom(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=_N, r=_R, p=_P, dklen=32)
    b64 = base64.urlsafe_b64encode
    return f"scrypt${_N}${_R}${_P}${b64(salt).decode()}${b64(digest).decode()}"


def _check(password: str, stored: str) -> bool:
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        if scheme != "scrypt":
            return False
        expected = base64.urlsafe_b64decode(digest)
        actual = hashlib.scrypt(
            password.encode(),
            salt=base64.urlsafe_b64decode(salt),
            n=int(n),
            r=int(r),
            p=int(p),
            dklen=len(expected),
        )
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(actual, expected)


class BreakGlassFileError(ValueError):
    """The break-glass file cannot be read or is malformed (the message names the problem)."""


@dataclass(frozen=True)
class _Account:
    tenant_slug: str
    username: str
    password_scrypt: str
    roles: tuple[MaciRole, ...]


class BreakGlassAccounts:
    """Implements `commands.sign_in.BreakGlass`."""

    def __init__(self, accounts: list[_Account]) -> None:
        self._accounts = {(a.tenant_slug, a.username.casefold()): a for a in accounts}
        self._dummy = hash_password("dummy", salt=b"\0" * 16)

    @classmethod
    def from_file(cls, path: Path) -> BreakGlassAccounts:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            accounts = [
                _Account(
                    tenant_slug=str(a["tenant_slug"]),
                    username=str(a["username"]),
                    password_scrypt=str(a["password_scrypt"]),
                    roles=tuple(MaciRole(r) for r in a["maci_roles"]),
                )
                for a in data["accounts"]
            ]
        except (OSError, ValueError, KeyError, TypeError) as exc:
            msg = f"break-glass file {path}: {type(exc).__name__} (expected accounts as documented)"
            raise BreakGlassFileError(msg) from None
        if any(not a.roles for a in accounts):
            msg = f"break-glass file {path}: every account needs at least one MACI role"
            raise BreakGlassFileError(msg)
        return cls(accounts)

    def verify(self, tenant_slug: str, username: str, password: str) -> tuple[MaciRole, ...] | None:
        account = self._accounts.get((tenant_slug, username.casefold()))
        if account is None:
            _check(password, self._dummy)
            return None
        return account.roles if _check(password, account.password_scrypt) else None
