"""Sign-in against the real slapd: lookup by name or email, the user's bind, groups from
`memberOf`, `groupOfNames` and `posixGroup`, every failure the same `InvalidCredentials`,
filter injection, an empty password refused before any bind, an unknown CA, a directory that is
down (retries, then the breaker opens after 5 failures and half-opens after 30 s), and a pool
that queues callers when every connection is busy."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import replace
from types import SimpleNamespace
from typing import Any, cast
from uuid import UUID, uuid4

import pytest
from ldap3 import Connection, Server
from ldap3.core.exceptions import LDAPCommunicationError

from api.bootstrap import System
from api.identity import DirectoryRegistry
from domain.errors import DependencyUnavailable, NotFound
from domain.identity import InvalidCredentials, normalise_dn
from domain.integration.schemas import LDAP
from infra.circuit_breaker import BreakerState, CircuitBreakers
from infra.ldap.directory import DirectorySettings
from infra.ldap.sign_in import LdapSignIn, _all, _raise_if_disconnected
from tests.peers.http import free_port
from tests.peers.slapd import BASE_DN, Slapd

pytestmark = pytest.mark.ldap

GROUP_FILTER = "(|(member={user_dn})(memberUid={username}))"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


_OPENED: list[LdapSignIn] = []


@pytest.fixture(autouse=True)
def _close_pools() -> Iterator[None]:
    yield
    while _OPENED:
        _OPENED.pop().close()


def _config(slapd: Slapd, **overrides: Any) -> dict[str, Any]:
    """An LDAP integration's configuration on the fixture's slapd."""
    return LDAP.validate(
        {
            "server_url": slapd.ldaps_url,
            "base_dn": slapd.base_dn,
            "bind_dn": slapd.service_dn,
            "bind_password": slapd.service_password,
            "ca_cert_pem": slapd.ca_pem,
            "timeout_seconds": 2,
            "group_search_filter": GROUP_FILTER,
            **overrides,
        },
        production=True,
    )


def _sign_in(slapd: Slapd, breakers: CircuitBreakers | None = None, **overrides: Any) -> LdapSignIn:
    config = _config(slapd, **overrides)
    directory = LdapSignIn(
        uuid4(),
        DirectorySettings.from_config(config),
        breakers or CircuitBreakers(),
        sleep=lambda _: None,
    )
    _OPENED.append(directory)
    return directory


def _dn(rdn: str) -> str:
    return normalise_dn(f"{rdn},{BASE_DN}")


def test_a_user_signs_in_and_gets_groups_of_every_kind(slapd: Slapd) -> None:
    directory = _sign_in(slapd)
    alice = directory.authenticate("alice", "alice-password")
    assert alice.dn == f"uid=alice,ou=people,{BASE_DN}"
    assert (alice.username, alice.email, alice.name) == (
        "alice",
        "alice@acme.test",
        "Alice Example",
    )
    assert alice.groups == {_dn("cn=executives,ou=groups"), _dn("cn=auditors,ou=groups")}
    bob = directory.authenticate("bob", "bob-password")
    # auditors through groupOfNames/member, developers through posixGroup/memberUid
    assert bob.groups == {_dn("cn=auditors,ou=groups"), _dn("cn=developers,ou=groups")}


def test_memberof_alone_gives_the_groups(slapd: Slapd) -> None:
    directory = _sign_in(slapd, group_search_filter="(memberUid={username})")
    alice = directory.authenticate("alice", "alice-password")
    # no posixGroup holds alice: both groups come from the memberof overlay's attribute
    assert alice.groups == {_dn("cn=executives,ou=groups"), _dn("cn=auditors,ou=groups")}


def test_an_email_finds_the_user(slapd: Slapd) -> None:
    assert _sign_in(slapd).authenticate("alice@acme.test", "alice-password").username == "alice"


def test_start_tls_works_too(slapd: Slapd) -> None:
    directory = _sign_in(slapd, server_url=slapd.ldap_url, start_tls=True)
    assert directory.authenticate("bob", "bob-password").username == "bob"


@pytest.mark.parametrize(
    ("username", "password"),
    [
        ("alice", "wrong-password"),
        ("nobody", "alice-password"),
        ("carol", "carol-password"),  # locked through ppolicy
        ("alice", ""),
        ("", "alice-password"),
    ],
    ids=["wrong-password", "unknown-user", "disabled-user", "empty-password", "empty-username"],
)
def test_every_failure_is_the_same_invalid_credentials(
    slapd: Slapd, username: str, password: str
) -> None:
    with pytest.raises(InvalidCredentials) as refused:
        _sign_in(slapd).authenticate(username, password)
    assert refused.value.code == "INVALID_CREDENTIALS"
    assert refused.value.message == "the user name or password is not valid"


@pytest.mark.parametrize(
    "username", ["*", ")(uid=*", "\x00", "admin)(|(uid=*", "al*", "*)(|(uid=*)"]
)
def test_filter_injection_finds_nobody(slapd: Slapd, username: str) -> None:
    directory = _sign_in(slapd)
    # every user's password is tried: an injected wildcard would match someone
    for password in ("alice-password", "bob-password", "admin-password"):
        with pytest.raises(InvalidCredentials):
            directory.authenticate(username, password)


def test_an_empty_password_never_reaches_the_directory(slapd: Slapd) -> None:
    breakers = CircuitBreakers()
    directory = _sign_in(slapd, breakers)
    with pytest.raises(InvalidCredentials):
        directory.authenticate("alice", "")
    assert directory.open_connections == 0  # no connection was even opened


def test_an_unknown_ca_is_refused(slapd: Slapd) -> None:
    directory = _sign_in(slapd, ca_cert_pem=slapd.other_ca_pem)
    with pytest.raises(DependencyUnavailable):
        directory.authenticate("alice", "alice-password")


def test_a_directory_that_is_down_opens_the_breaker_after_5_and_half_opens_after_30_s(
    slapd: Slapd,
) -> None:
    clock = Clock()
    breakers = CircuitBreakers(clock=clock)
    down = _sign_in(slapd, breakers, server_url=f"ldaps://127.0.0.1:{free_port()}")
    attempts = 0
    real_open = down._open_connection

    def counting_open() -> Any:
        nonlocal attempts
        attempts += 1
        return real_open()

    down._open_connection = counting_open  # type: ignore[method-assign]
    for _ in range(5):
        with pytest.raises(DependencyUnavailable):
            down.authenticate("alice", "alice-password")
    assert attempts == 5 * 3  # each sign-in tried 3 connections (retries with backoff)
    assert breakers.state(down.integration_id) is BreakerState.OPEN
    with pytest.raises(DependencyUnavailable) as refused:
        down.authenticate("alice", "alice-password")
    assert attempts == 15  # refused at once, nothing tried
    assert "circuit breaker" in refused.value.message
    clock.now += 29.9
    assert breakers.state(down.integration_id) is BreakerState.OPEN
    clock.now += 0.2
    assert breakers.state(down.integration_id) is BreakerState.HALF_OPEN
    # the trial goes to a directory that is up again: it closes the breaker
    down.settings = _sign_in(slapd).settings
    down._directory = _sign_in(slapd)._directory
    assert down.authenticate("alice", "alice-password").username == "alice"
    assert breakers.state(down.integration_id) is BreakerState.CLOSED


def test_a_wrong_password_is_not_retried_and_does_not_open_the_breaker(slapd: Slapd) -> None:
    breakers = CircuitBreakers()
    directory = _sign_in(slapd, breakers)
    for _ in range(8):
        with pytest.raises(InvalidCredentials):
            directory.authenticate("alice", "nope")
    assert breakers.state(directory.integration_id) is BreakerState.CLOSED
    assert directory.open_connections == 1  # one pooled connection, reused every time


def test_an_exhausted_pool_queues_callers_instead_of_failing(slapd: Slapd) -> None:
    directory = _sign_in(slapd, connection_pool_size=5)
    results: list[str] = []
    errors: list[BaseException] = []
    start = threading.Barrier(20)

    def sign_in() -> None:
        start.wait()
        try:
            results.append(directory.authenticate("bob", "bob-password").username)
        except BaseException as exc:  # noqa: BLE001 - collected for the assertion
            errors.append(exc)

    threads = [threading.Thread(target=sign_in) for _ in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert results == ["bob"] * 20
    assert directory.open_connections == 5


def test_refresh_rereads_the_user(slapd: Slapd) -> None:
    directory = _sign_in(slapd)
    again = directory.lookup(f"uid=bob,ou=people,{BASE_DN}")
    assert again is not None
    assert _dn("cn=developers,ou=groups") in again.groups
    assert directory.lookup(f"uid=gone,ou=people,{BASE_DN}") is None


def test_against_slapd_the_group_search_is_a_plain_member_match(
    slapd: Slapd, monkeypatch: pytest.MonkeyPatch
) -> None:
    """slapd's root DSE advertises no Active Directory capability, so no in-chain rule is sent
    (tests/unit/identity/test_active_directory_groups.py: what Active Directory gets)."""
    directory = _sign_in(slapd)
    sent: list[tuple[str, str]] = []
    search = directory._search

    def recording(connection: Any, base: str, search_filter: str, *rest: Any) -> Any:
        sent.append((base, search_filter))
        return search(connection, base, search_filter, *rest)

    monkeypatch.setattr(directory, "_search", recording)
    user = directory.authenticate("alice", "alice-password")
    assert _dn("cn=executives,ou=groups") in user.groups
    assert ("", "(objectClass=*)") in sent  # the root DSE was asked
    alice = f"uid=alice,ou=people,{BASE_DN}"
    assert [f for base, f in sent if base == BASE_DN and "member" in f] == [
        f"(|(member={alice})(memberUid=alice))"
    ]
    assert not any("1.2.840.113556.1.4.1941" in f for _, f in sent)


def test_an_empty_group_filter_reads_memberof_in_one_search(
    slapd: Slapd, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No group search: the user entry's `memberOf` (the memberof overlay) gives the groups, so
    a refresh's re-read is one search; a posixGroup membership (memberUid) is then not seen."""
    directory = _sign_in(slapd, group_search_filter="")
    sent: list[str] = []
    search = directory._search

    def recording(connection: Any, base: str, search_filter: str, *rest: Any) -> Any:
        sent.append(search_filter)
        return search(connection, base, search_filter, *rest)

    monkeypatch.setattr(directory, "_search", recording)
    alice = directory.authenticate("alice", "alice-password")
    assert alice.groups == {_dn("cn=executives,ou=groups"), _dn("cn=auditors,ou=groups")}
    assert sent == ["(uid=alice)"]  # the user search only: no root DSE, no group search
    sent.clear()
    bob = directory.lookup(f"uid=bob,ou=people,{BASE_DN}")
    assert bob is not None
    assert bob.groups == {_dn("cn=auditors,ou=groups")}  # developers is a posixGroup
    assert sent == ["(objectClass=*)"]
    assert directory.lookup(f"uid=gone,ou=people,{BASE_DN}") is None


def test_a_service_account_the_directory_refuses_is_an_outage_not_a_bad_password(
    slapd: Slapd,
) -> None:
    directory = _sign_in(slapd, bind_password="not-the-service-password")
    with pytest.raises(DependencyUnavailable, match="refused the service account's credentials"):
        directory.authenticate("alice", "alice-password")
    assert directory.open_connections == 0  # the connection is closed, not pooled


def test_a_pool_that_stays_busy_is_reported_unreachable(slapd: Slapd) -> None:
    directory = _sign_in(slapd)
    directory.settings = replace(directory.settings, pool_size=1, timeout_seconds=0.05)
    held = directory._acquire()  # the only connection, busy elsewhere
    try:
        with pytest.raises(DependencyUnavailable, match="cannot be reached"):
            directory.authenticate("bob", "bob-password")
        assert directory.open_connections == 1
    finally:
        directory._idle.put(held)
    assert directory.authenticate("bob", "bob-password").username == "bob"


def test_a_stored_dn_the_directory_cannot_parse_finds_nobody(slapd: Slapd) -> None:
    directory = _sign_in(slapd)
    assert directory.lookup("not a distinguished name") is None
    assert directory.lookup(f"uid=bob,ou=people,{BASE_DN}") is not None  # the pool still works


def test_a_pooled_connection_the_server_closed_is_replaced(slapd: Slapd) -> None:
    directory = _sign_in(slapd)
    assert directory.authenticate("bob", "bob-password").username == "bob"
    [pooled] = list(directory._idle.queue)
    pooled.connection.unbind()  # as when the server dropped it while it sat in the pool
    assert directory.authenticate("bob", "bob-password").username == "bob"
    assert directory.open_connections == 1
    assert [p.connection for p in directory._idle.queue] != [pooled.connection]


def test_a_closed_connection_counts_as_disconnected(slapd: Slapd) -> None:
    connection = Connection(Server(slapd.ldaps_url))  # never opened: closed
    with pytest.raises(LDAPCommunicationError, match="connection failed"):
        _raise_if_disconnected(connection)


def test_single_and_missing_attribute_values_read_as_lists() -> None:
    assert _all("cn=auditors") == ["cn=auditors"]
    assert _all(["a", "b"]) == ["a", "b"]
    assert _all(None) == []


def test_the_registry_closes_the_pools_it_keeps(slapd: Slapd) -> None:
    tenant_id, integration_id = uuid4(), uuid4()
    stored = SimpleNamespace(
        id=integration_id, integration_type=SimpleNamespace(value="ldap"), enabled=True,
        version=1, clear_config=lambda _sealer: _config(slapd),
    )  # fmt: skip

    class Integrations:
        sealer = None

        def load(self, tenant: UUID, integration: UUID) -> Any:
            if (tenant, integration) != (tenant_id, integration_id):
                raise NotFound("no such integration")
            return stored

    system = cast(
        "System", SimpleNamespace(integrations=Integrations(), breakers=CircuitBreakers())
    )
    registry = DirectoryRegistry(system)
    assert registry.directory(uuid4(), integration_id) is None  # another tenant's
    directory = registry.directory(tenant_id, integration_id)
    assert directory is not None
    assert directory.authenticate("bob", "bob-password").username == "bob"
    pool = cast("LdapSignIn", directory)
    assert pool.open_connections == 1
    registry.close()
    assert pool.open_connections == 0
