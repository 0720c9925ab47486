"""Group DNs compared normalised, and role resolution: every matching mapping ordered by
priority (larger wins), ties by rank, the first is primary; no match gives the default role, or
nothing when the tenant set none."""

from __future__ import annotations

from uuid import uuid4

import pytest

from domain.identity import GroupMapping, normalise_dn, resolve_roles
from domain.maci import MaciRole

INTEGRATION = uuid4()


def _mapping(group: str, role: MaciRole, priority: int = 100) -> GroupMapping:
    return GroupMapping(uuid4(), INTEGRATION, normalise_dn(group), role, priority)


@pytest.mark.parametrize(
    "spelling",
    [
        "cn=Admins,ou=Groups,dc=acme,dc=com",
        "CN=admins, OU=groups, DC=ACME, DC=com",
        "cn = admins ,ou=groups,dc=acme,dc=com",
        "cn=admins;ou=groups;dc=acme;dc=com",
    ],
)
def test_spellings_of_one_dn_normalise_alike(spelling: str) -> None:
    assert normalise_dn(spelling) == "cn=admins,ou=groups,dc=acme,dc=com"


def test_an_escaped_comma_stays_inside_its_value() -> None:
    assert normalise_dn(r"CN=Smith\, John,OU=People") == r"cn=smith\, john,ou=people"
    assert normalise_dn(r"cn=a\,b,dc=x") != normalise_dn("cn=a,b,dc=x")


def test_larger_priority_wins_and_every_match_is_returned() -> None:
    low = _mapping("cn=exec,dc=x", MaciRole.EXECUTIVE, priority=10)
    high = _mapping("CN=Audit,DC=X", MaciRole.AUDITOR, priority=200)
    other = _mapping("cn=nobody,dc=x", MaciRole.JUDICIAL, priority=999)
    resolved = resolve_roles(
        {normalise_dn("cn=exec,dc=x"), normalise_dn("cn=audit,dc=x")}, [low, other, high], None
    )
    assert resolved is not None
    assert resolved.roles == (MaciRole.AUDITOR, MaciRole.EXECUTIVE)
    assert resolved.primary is MaciRole.AUDITOR
    assert resolved.matched == (high.mapping_id, low.mapping_id)


def test_equal_priorities_are_ordered_by_rank() -> None:
    groups = {normalise_dn("cn=a,dc=x"), normalise_dn("cn=b,dc=x")}
    mappings = [_mapping("cn=a,dc=x", MaciRole.MONITOR), _mapping("cn=b,dc=x", MaciRole.JUDICIAL)]
    resolved = resolve_roles(groups, mappings, None)
    assert resolved is not None
    assert resolved.roles == (MaciRole.JUDICIAL, MaciRole.MONITOR)


def test_a_role_mapped_twice_appears_once() -> None:
    groups = {normalise_dn("cn=a,dc=x"), normalise_dn("cn=b,dc=x")}
    mappings = [_mapping("cn=a,dc=x", MaciRole.AUDITOR), _mapping("cn=b,dc=x", MaciRole.AUDITOR)]
    resolved = resolve_roles(groups, mappings, None)
    assert resolved is not None
    assert resolved.roles == (MaciRole.AUDITOR,)
    assert len(resolved.matched) == 2


def test_no_match_gives_the_default_role_or_nothing() -> None:
    mappings = [_mapping("cn=a,dc=x", MaciRole.EXECUTIVE)]
    resolved = resolve_roles({"cn=z,dc=x"}, mappings, MaciRole.MONITOR)
    assert resolved is not None
    assert (resolved.roles, resolved.matched) == ((MaciRole.MONITOR,), ())
    assert resolve_roles({"cn=z,dc=x"}, mappings, None) is None
    assert resolve_roles(set(), [], None) is None
