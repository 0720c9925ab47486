"""How a tenant's users sign in: the role of a user no mapping matches, and session lifetimes.

`default_role` is a MACI role or `none` (a user whose groups match no role mapping is then
refused); the access token lives `access_token_ttl_seconds`, the session (its refresh tokens)
`refresh_token_ttl_seconds`, never shorter than the access token.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from domain.errors import ValidationFailed
from domain.maci import MaciRole
from domain.sessions import ACCESS_TTL_SECONDS, REFRESH_TTL_SECONDS

NO_ROLE = "none"
ACCESS_TTL_BOUNDS = (60, 86_400)  # one minute to one day
REFRESH_TTL_BOUNDS = (300, 30 * 86_400)  # five minutes to thirty days
DEFAULT_ROLE_CHOICES = (*(r.value for r in MaciRole), NO_ROLE)
_BOUNDS = {
    "access_token_ttl_seconds": ACCESS_TTL_BOUNDS,
    "refresh_token_ttl_seconds": REFRESH_TTL_BOUNDS,
}


@dataclass(frozen=True)
class SignInSettings:
    default_role: MaciRole | None = MaciRole.MONITOR
    access_token_ttl_seconds: int = ACCESS_TTL_SECONDS
    refresh_token_ttl_seconds: int = REFRESH_TTL_SECONDS

    FIELDS = ("default_role", "access_token_ttl_seconds", "refresh_token_ttl_seconds")

    def changed(self, changes: Mapping[str, object]) -> SignInSettings:
        """These settings with `changes` applied; every bad field reported at once."""
        problems: list[dict[str, str]] = []
        role = self.default_role
        if "default_role" in changes:
            role = _default_role(changes["default_role"], problems)
        access = _seconds(
            changes, "access_token_ttl_seconds", self.access_token_ttl_seconds, problems
        )
        refresh = _seconds(
            changes, "refresh_token_ttl_seconds", self.refresh_token_ttl_seconds, problems
        )
        ttls_valid = all(p["field"] == "default_role" for p in problems)
        if ttls_valid and refresh < access:
            field = "access_token_ttl_seconds"
            if "refresh_token_ttl_seconds" in changes:
                field = "refresh_token_ttl_seconds"
            message = f"must be at least the access token's lifetime ({access} s)"
            if field == "access_token_ttl_seconds":
                message = f"must be at most the refresh token's lifetime ({refresh} s)"
            problems.append({"field": field, "message": message})
        if problems:
            raise ValidationFailed.listing(problems)
        return SignInSettings(role, access, refresh)

    def as_dict(self) -> dict[str, Any]:
        return {
            "default_role": NO_ROLE if self.default_role is None else self.default_role.value,
            "access_token_ttl_seconds": self.access_token_ttl_seconds,
            "refresh_token_ttl_seconds": self.refresh_token_ttl_seconds,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SignInSettings:
        role = data["default_role"]
        return cls(
            None if role == NO_ROLE else MaciRole(role),
            int(data["access_token_ttl_seconds"]),
            int(data["refresh_token_ttl_seconds"]),
        )


def _default_role(value: object, problems: list[dict[str, str]]) -> MaciRole | None:
    if value == NO_ROLE:
        return None
    if isinstance(value, str) and value in MaciRole.__members__:
        return MaciRole(value)
    problems.append(
        {"field": "default_role", "message": f"must be one of {list(DEFAULT_ROLE_CHOICES)}"}
    )
    return None


def _seconds(
    changes: Mapping[str, object], field: str, current: int, problems: list[dict[str, str]]
) -> int:
    if field not in changes:
        return current
    value = changes[field]
    low, high = _BOUNDS[field]
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        problems.append({"field": field, "message": f"must be an integer from {low} to {high}"})
        return current
    return value
