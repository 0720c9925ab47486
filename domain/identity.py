"""Who a directory says a user is, and how their groups become MACI roles.

`DirectoryUser` is what an identity provider (LDAP today) answers after checking a password.
`normalise_dn` makes group DNs comparable: attribute types and values compared
case-insensitively, spaces around `=` and `,` ignored, escapes kept.
`resolve_roles` applies the role mappings: every mapping whose group the user is in, ordered by
priority (a larger number wins), ties broken by role rank (highest first); the first is the
primary role. No match gives the tenant's default role, or nothing when that is `None` (sign-in
refused).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from uuid import UUID

from domain.errors import DomainError, Forbidden
from domain.maci import MaciRole

SIGN_IN_FAILED = "the user name or password is not valid"
NO_ROLE_MAPPED = "no role is mapped for this user"


class InvalidCredentials(DomainError):
    """Unknown user, wrong or empty password, disabled account, no role: deliberately never
    told apart (one code, one message)."""

    code = "INVALID_CREDENTIALS"

    def __init__(self) -> None:
        super().__init__(SIGN_IN_FAILED)


class NoRoleMapped(Forbidden):
    """The password is right, but no role mapping matches the user and the tenant's default
    role is `none`. Told only after a correct password, so it reveals nothing to a guesser."""

    def __init__(self) -> None:
        super().__init__(NO_ROLE_MAPPED)


@dataclass(frozen=True)
class DirectoryUser:
    dn: str
    username: str
    email: str | None
    name: str | None
    department: str | None
    groups: frozenset[str]  # normalised DNs


@dataclass(frozen=True)
class GroupMapping:
    mapping_id: UUID
    integration_id: UUID
    group: str  # normalised DN (LDAP) or group name (SAML/OIDC)
    role: MaciRole
    priority: int


@dataclass(frozen=True)
class ResolvedRoles:
    roles: tuple[MaciRole, ...]  # primary first
    matched: tuple[UUID, ...]  # mapping ids that matched, in order

    @property
    def primary(self) -> MaciRole:
        return self.roles[0]


def normalise_dn(dn: str) -> str:
    """`CN=Admins , OU=Groups,DC=Acme` and `cn=admins,ou=groups,dc=acme` are the same group."""
    parts: list[str] = []
    current: list[str] = []
    escaped = False
    for char in dn:
        if escaped:
            current.append(char)
            escaped = False
        elif char == "\\":
            current.append(char)
            escaped = True
        elif char in ",;":
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
    parts.append("".join(current))
    normalised = []
    for rdn in parts:
        kind, sep, value = rdn.partition("=")
        normalised.append(f"{kind.strip().lower()}{sep}{value.strip().lower()}")
    return ",".join(p for p in normalised if p)


def resolve_roles(
    groups: Iterable[str],
    mappings: Iterable[GroupMapping],
    default_role: MaciRole | None,
) -> ResolvedRoles | None:
    """The roles of a user in `groups` (normalised), or None when sign-in must be refused."""
    member = set(groups)
    matched = [m for m in mappings if m.group in member]
    matched.sort(key=lambda m: (-m.priority, -m.role.rank))
    roles: list[MaciRole] = []
    for mapping in matched:
        if mapping.role not in roles:
            roles.append(mapping.role)
    if roles:
        return ResolvedRoles(tuple(roles), tuple(m.mapping_id for m in matched))
    if default_role is None:
        return None
    return ResolvedRoles((default_role,), ())
