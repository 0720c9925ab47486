"""What SAML sign-in knows, as plain values: a refused message (`SamlRejected`, with a short
reason for the audit log), a response screened before validation (`Screened`), what a valid
assertion says (`SamlAssertion`), an IdP's logout request (`IdpLogout`), and how an assertion's
attributes become the user's profile and the values matched against `saml_attribute` role
mappings (`profile_of`)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

USERNAME_ATTRIBUTES = ("uid", "username", "urn:oid:0.9.2342.19200300.100.1.1")
EMAIL_ATTRIBUTES = ("mail", "email", "urn:oid:0.9.2342.19200300.100.1.3")
NAME_ATTRIBUTES = ("displayName", "cn", "urn:oid:2.16.840.1.113730.3.1.241")
MAX_VALUES = 1000


class SamlRejected(Exception):
    """A SAML message refused; `reason` is a short code for the audit log."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True)
class Screened:
    """A response that passed the checks made before any signature is looked at, and the facts
    read from it (not yet verified) that choose how to validate it."""

    xml: bytes
    root: Any  # the parsed document (lxml)
    in_response_to: str | None
    audiences: tuple[str, ...]
    issuer: str | None
    refusal: SamlRejected | None = None  # found after parsing: raised once the tenant is known


@dataclass(frozen=True)
class SamlAssertion:
    """What a valid response says about the user."""

    issuer: str
    name_id: str
    name_id_format: str | None
    session_index: str | None
    attributes: dict[str, list[str]]
    assertion_id: str
    not_on_or_after: datetime
    in_response_to: str | None


@dataclass(frozen=True)
class IdpLogout:
    """An IdP's LogoutRequest, checked: whose sessions end, and where our answer goes."""

    name_id: str
    session_indexes: list[str]
    redirect_url: str


@dataclass(frozen=True)
class SamlSessionRef:
    """What single logout needs of a SAML session: the IdP's NameID and SessionIndex."""

    sid: str
    name_id: str
    name_id_format: str | None
    session_index: str | None


@dataclass(frozen=True)
class SamlSignInFacts:
    """What a SAML sign-in's session is opened with, in the session's own transaction: the
    assertion id, used once per tenant (kept in the replay cache until `keep_until`; a second
    use is `SamlRejected("replay")` and opens nothing), and the IdP's NameID and SessionIndex,
    which single logout needs."""

    assertion_id: str
    keep_until: datetime
    name_id: str
    name_id_format: str | None
    session_index: str | None


@dataclass(frozen=True)
class SamlProfile:
    username: str
    email: str | None
    name: str | None
    values: frozenset[str]


def _first(attributes: dict[str, list[str]], names: tuple[str, ...]) -> str | None:
    for name in names:
        values = attributes.get(name)
        if values:
            return values[0]
    return None


def profile_of(assertion: SamlAssertion, attribute_map: dict[str, str]) -> SamlProfile:
    """The user's profile from the attributes (`attribute_map` names the attribute of each
    property: username, email, name, groups; common attribute names otherwise), and the values
    role mappings match: every value of the groups attribute as it is, and every value of every
    attribute as `Name=value`."""
    attrs = assertion.attributes

    def pick(prop: str, defaults: tuple[str, ...]) -> str | None:
        mapped = attribute_map.get(prop)
        return _first(attrs, (mapped,) if mapped else defaults)

    groups_attribute = attribute_map.get("groups", "groups")
    values = set(attrs.get(groups_attribute, []))
    for name, items in attrs.items():
        values.update(f"{name}={v}" for v in items)
    return SamlProfile(
        username=pick("username", USERNAME_ATTRIBUTES) or assertion.name_id,
        email=pick("email", EMAIL_ATTRIBUTES),
        name=pick("name", NAME_ATTRIBUTES),
        values=frozenset(sorted(values)[:MAX_VALUES]),
    )
