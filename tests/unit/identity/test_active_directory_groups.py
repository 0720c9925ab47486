"""Nested groups on Active Directory: no Active Directory can run here, so the directory is a
recording stand-in that answers like one (its root DSE advertises the AD capability) and checks
what the sign-in would send: the group search asks for `member` through
LDAP_MATCHING_RULE_IN_CHAIN with the user's DN escaped, which ldap3 encodes as an extensible
match. The same search against the real slapd (no such capability) stays a plain equality match:
tests/integration/test_ldap_sign_in.py."""

from __future__ import annotations

from typing import Any
from uuid import uuid4

from ldap3 import BASE, SUBTREE
from ldap3.operation.search import compile_filter, parse_filter

from domain.integration.schemas import LDAP
from infra.circuit_breaker import CircuitBreakers
from infra.ldap.directory import DirectorySettings
from infra.ldap.sign_in import AD_CAPABILITY, IN_CHAIN, LdapSignIn

BASE_DN = "dc=corp,dc=example"
USER_DN = rf"cn=Smith\, John (IT*),ou=people,{BASE_DN}"  # a comma, parentheses and a star
GROUP_DN = f"cn=Governance Admins,ou=groups,{BASE_DN}"


class ActiveDirectoryStandIn:
    """The part of an ldap3 `Connection` the sign-in uses, answering as Active Directory does,
    and recording every search it is sent."""

    closed = False

    def __init__(self) -> None:
        self.searches: list[tuple[str, str, Any]] = []
        self.response: list[dict[str, Any]] = []
        self.result: dict[str, Any] = {"result": 0}
        self.user = self.password = ""
        self.auto_referrals = True

    def bind(self) -> bool:
        return True

    def search(self, base: str, search_filter: str, search_scope: Any, **_: Any) -> bool:
        self.searches.append((base, search_filter, search_scope))
        if base == "" and search_scope == BASE:  # the root DSE
            entry = {"supportedCapabilities": ["1.2.840.113556.1.4.1670", AD_CAPABILITY]}
            self.response = [{"type": "searchResEntry", "dn": "", "attributes": entry}]
        elif base == USER_DN:
            self.response = [
                {"type": "searchResEntry", "dn": USER_DN, "attributes": {"uid": ["jsmith"]}}
            ]
        else:  # the group search: one group, found through a nested one
            self.response = [{"type": "searchResEntry", "dn": GROUP_DN, "attributes": {}}]
        return True


class OnActiveDirectory(LdapSignIn):
    def __init__(self, server: ActiveDirectoryStandIn) -> None:
        config = LDAP.validate(
            {
                "server_url": "ldaps://ad.corp.example:636",
                "base_dn": BASE_DN,
                "bind_dn": f"cn=acgs,ou=services,{BASE_DN}",
                "bind_password": "service-secret",
                "group_search_filter": "(|(member={user_dn})(memberUid={username}))",
            },
            production=True,
        )
        super().__init__(uuid4(), DirectorySettings.from_config(config), CircuitBreakers())
        self.server = server

    def _open_connection(self) -> Any:
        return self.server


def test_on_active_directory_the_group_search_follows_nested_groups() -> None:
    server = ActiveDirectoryStandIn()
    user = OnActiveDirectory(server).lookup(USER_DN)
    assert user is not None
    assert user.groups == frozenset({"cn=governance admins,ou=groups,dc=corp,dc=example"})
    [(sent, scope)] = [(f, scope) for base, f, scope in server.searches if base == BASE_DN]
    assert scope == SUBTREE
    escaped = r"cn=Smith\5c, John \28IT\2a\29,ou=people,dc=corp,dc=example"
    assert sent == f"(|(member:{IN_CHAIN}:={escaped})(memberUid=jsmith))"
    # as ldap3 puts it on the wire: an extensible match with the in-chain rule and the DN as is
    parsed = parse_filter(
        sent, schema=None, auto_escape=False, auto_encode=True, validator=None, check_names=False
    )
    encoded = compile_filter(parsed.elements[0])
    in_chain = encoded["or"][0]["extensibleMatch"]
    assert str(in_chain["matchingRule"]) == "1.2.840.113556.1.4.1941"
    assert str(in_chain["type"]) == "member"
    assert bytes(in_chain["matchValue"]) == USER_DN.encode()
    assert str(encoded["or"][1]["equalityMatch"]["attributeDesc"]) == "memberUid"


def test_the_root_dse_is_read_once_per_directory() -> None:
    server = ActiveDirectoryStandIn()
    directory = OnActiveDirectory(server)
    for _ in range(3):
        directory.lookup(USER_DN)
    root_dse_reads = [s for s in server.searches if s[0] == "" and s[2] == BASE]
    assert len(root_dse_reads) == 1
    group_searches = [s[1] for s in server.searches if s[0] == BASE_DN]
    assert len(group_searches) == 3
    assert all(f"member:{IN_CHAIN}:=" in sent for sent in group_searches)
