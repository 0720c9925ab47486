"""Sign-in against one LDAP directory (an integration of type LDAP).

A pool of connections per integration (at most `connection_pool_size`, opened lazily and kept;
when all are busy a caller waits for one, up to the timeout, instead of failing). One sign-in on
one pooled connection:

1. an empty password is refused before anything is sent (ldap3 would make it an anonymous bind
   that succeeds);
2. bind as the service account (skipped when the connection is still bound as it);
3. look the user up under `base_dn`: by `user_search_filter`, or by the mapped `email` attribute
   when the name typed contains `@`; every value escaped for LDAP filters (RFC 4515), so `*`,
   `)(uid=*` or NUL cannot change the filter; exactly one entry must match;
4. bind as the found DN with the password typed (a refused bind: `InvalidCredentials`, never
   retried);
5. read the groups, as the service account again: the mapped `groups` attribute (`memberOf`),
   plus the entries `group_search_filter` finds (`groupOfNames`/`member`, `posixGroup`/
   `memberUid`); on Active Directory (recognised from its root DSE) a `member={user_dn}` filter
   becomes `member:1.2.840.113556.1.4.1941:=` so nested groups count. An empty
   `group_search_filter` sends no group search: the `memberOf` values (kept by the directory,
   e.g. OpenLDAP's memberof overlay) are the groups, one search less per sign-in and refresh.

Connection errors (refused, reset, timed out, TLS) are retried at most 3 times with exponential
backoff, each on a fresh connection, and count against the integration's circuit breaker; when
the directory stays unreachable the caller gets `DependencyUnavailable`. Referrals are never
chased. Passwords are never logged nor put in an error.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar
from uuid import UUID

from ldap3 import BASE, SUBTREE, Connection
from ldap3.core.exceptions import (
    LDAPCommunicationError,
    LDAPException,
    LDAPSocketOpenError,
    LDAPStartTLSError,
)

from domain.errors import DependencyUnavailable
from domain.identity import DirectoryUser, InvalidCredentials, normalise_dn
from domain.integration.ldap_filters import escape_filter_value, render_filter
from infra.circuit_breaker import CircuitBreakers
from infra.ldap.directory import DirectorySettings, LdapDirectory, _close

T = TypeVar("T")
MAX_ATTEMPTS = 3
BACKOFF_SECONDS = 0.05  # 50 ms, then 100 ms
AD_CAPABILITY = "1.2.840.113556.1.4.800"  # LDAP_CAP_ACTIVE_DIRECTORY_OID
IN_CHAIN = "1.2.840.113556.1.4.1941"  # LDAP_MATCHING_RULE_IN_CHAIN
CONNECTION_ERRORS = (LDAPSocketOpenError, LDAPStartTLSError, LDAPCommunicationError, OSError)


class _Unreachable(Exception):
    """A connection error after the last retry (counts against the breaker)."""


class _Pooled:
    def __init__(self, connection: Connection) -> None:
        self.connection = connection
        self.bound_as_service = False


class LdapSignIn:
    def __init__(
        self,
        integration_id: UUID,
        settings: DirectorySettings,
        breakers: CircuitBreakers,
        *,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.integration_id = integration_id
        self.settings = settings
        self._directory = LdapDirectory(settings)
        self._breakers = breakers
        self._sleep = sleep
        self._idle: queue.LifoQueue[_Pooled] = queue.LifoQueue()
        self._lock = threading.Lock()
        self._open = 0
        self._is_ad: bool | None = None

    # --- public -------------------------------------------------------------------------------

    def authenticate(self, username: str, password: str) -> DirectoryUser:
        """The user, after their password was accepted by the directory."""
        if not password or not username:
            raise InvalidCredentials
        return self._guarded(lambda c: self._sign_in(c, username, password))

    def lookup(self, dn: str) -> DirectoryUser | None:
        """The user at `dn` as the directory sees it now (refresh re-reads groups), or None
        when the entry is gone."""
        return self._guarded(lambda c: self._reread(c, dn))

    @property
    def open_connections(self) -> int:
        return self._open

    def close(self) -> None:
        while True:
            try:
                pooled = self._idle.get_nowait()
            except queue.Empty:
                return
            _close(pooled.connection)
            with self._lock:
                self._open -= 1

    # --- retries, breaker, pool ---------------------------------------------------------------

    def _guarded(self, work: Callable[[_Pooled], T]) -> T:
        """`work` on a pooled connection, retried and behind the breaker. A refused credential
        is an answer of a directory that is up: it leaves the breaker as a success."""

        def attempt() -> T | InvalidCredentials:
            try:
                return self._with_retries(work)
            except InvalidCredentials as refused:
                return refused

        try:
            outcome = self._breakers.call(self.integration_id, attempt, lambda _: False)
        except _Unreachable:
            raise DependencyUnavailable(
                "the directory cannot be reached", {"integration_id": str(self.integration_id)}
            ) from None
        if isinstance(outcome, InvalidCredentials):
            raise InvalidCredentials
        return outcome

    def _with_retries(self, work: Callable[[_Pooled], T]) -> T:
        for attempt in range(MAX_ATTEMPTS):
            try:
                with self._connection() as pooled:
                    return work(pooled)
            except CONNECTION_ERRORS:
                if attempt + 1 == MAX_ATTEMPTS:
                    raise _Unreachable from None
                self._sleep(BACKOFF_SECONDS * 2**attempt)
        raise AssertionError("unreachable")  # pragma: no cover

    @contextmanager
    def _connection(self) -> Iterator[_Pooled]:
        """A pooled connection; it goes back to the pool unless it failed (a refused
        credential leaves it usable; it is bound as the service again before its next use)."""
        pooled = self._acquire()
        healthy = False
        try:
            yield pooled
            healthy = True
        except InvalidCredentials:
            healthy = True
            raise
        finally:
            if healthy:
                self._idle.put(pooled)
            else:
                _close(pooled.connection)
                with self._lock:
                    self._open -= 1

    def _acquire(self) -> _Pooled:
        try:
            return self._idle.get_nowait()
        except queue.Empty:
            pass
        with self._lock:
            may_open = self._open < self.settings.pool_size
            if may_open:
                self._open += 1
        if not may_open:
            try:
                return self._idle.get(timeout=self.settings.timeout_seconds)
            except queue.Empty:
                raise LDAPCommunicationError("no pooled connection became free") from None
        try:
            return _Pooled(self._open_connection())
        except BaseException:
            with self._lock:
                self._open -= 1
            raise

    def _open_connection(self) -> Connection:
        s = self.settings
        connection = self._directory.connect(s.bind_dn, s.bind_password)
        connection.auto_referrals = False
        return connection

    # --- the directory conversation -----------------------------------------------------------

    def _bind(self, pooled: _Pooled, dn: str, password: str) -> bool:
        connection = pooled.connection
        connection.user, connection.password = dn, password
        pooled.bound_as_service = False
        ok = bool(connection.bind())
        if not ok:
            _raise_if_disconnected(connection)
        return ok

    def _as_service(self, pooled: _Pooled) -> Connection:
        if not pooled.bound_as_service:
            s = self.settings
            if not self._bind(pooled, s.bind_dn, s.bind_password):
                raise DependencyUnavailable(
                    "the directory refused the service account's credentials",
                    {"integration_id": str(self.integration_id)},
                )
            pooled.bound_as_service = True
        return pooled.connection

    def _sign_in(self, pooled: _Pooled, username: str, password: str) -> DirectoryUser:
        connection = self._as_service(pooled)
        entry = self._find_user(connection, username)
        if entry is None:
            raise InvalidCredentials
        dn = entry["dn"]
        if not self._bind(pooled, dn, password):
            raise InvalidCredentials
        connection = self._as_service(pooled)
        return self._user(connection, dn, entry["attributes"])

    def _reread(self, pooled: _Pooled, dn: str) -> DirectoryUser | None:
        connection = self._as_service(pooled)
        entries = self._search(connection, dn, "(objectClass=*)", BASE, self._user_attributes())
        if len(entries) != 1:
            return None
        return self._user(connection, entries[0]["dn"], entries[0]["attributes"])

    def _find_user(self, connection: Connection, username: str) -> dict[str, Any] | None:
        s = self.settings
        if "@" in username:
            mail = s.attribute_map.get("email", "mail")
            search = f"({mail}={escape_filter_value(username)})"
        else:
            search = render_filter(s.user_search_filter, username=username)
        entries = self._search(connection, s.base_dn, search, SUBTREE, self._user_attributes())
        return entries[0] if len(entries) == 1 else None

    def _user(self, connection: Connection, dn: str, attributes: dict[str, Any]) -> DirectoryUser:
        amap = self.settings.attribute_map
        username = _first(attributes.get(amap.get("username", "uid"))) or dn
        groups = {normalise_dn(g) for g in _all(attributes.get(amap.get("groups", "memberOf")))}
        if self.settings.group_search_filter:  # empty: the memberOf values are the groups
            search = self._group_filter(connection)
            found = self._search(
                connection,
                self.settings.base_dn,
                render_filter(search, username=username, user_dn=dn),
                SUBTREE,
                [],
            )
            groups.update(normalise_dn(e["dn"]) for e in found)
        return DirectoryUser(
            dn=dn,
            username=username,
            email=_first(attributes.get(amap.get("email", "mail"))),
            name=_first(attributes.get("cn")) or _first(attributes.get("displayName")),
            department=_first(attributes.get(amap.get("department", "departmentNumber"))),
            groups=frozenset(groups),
        )

    def _group_filter(self, connection: Connection) -> str:
        search = self.settings.group_search_filter
        if self._active_directory(connection):
            search = search.replace("(member={user_dn})", f"(member:{IN_CHAIN}:={{user_dn}})")
        return search

    def _active_directory(self, connection: Connection) -> bool:
        if self._is_ad is None:
            entries = self._search(
                connection, "", "(objectClass=*)", BASE, ["supportedCapabilities"]
            )
            capabilities = (
                _all(entries[0]["attributes"].get("supportedCapabilities")) if entries else []
            )
            self._is_ad = AD_CAPABILITY in capabilities
        return self._is_ad

    def _user_attributes(self) -> list[str]:
        amap = self.settings.attribute_map
        wanted = {amap.get(k, d) for k, d in _DEFAULT_ATTRIBUTES.items()}
        return sorted(wanted | {"cn", "displayName"})

    def _search(
        self, connection: Connection, base: str, search: str, scope: Any, attributes: list[str]
    ) -> list[dict[str, Any]]:
        try:
            connection.search(
                base,
                search,
                search_scope=scope,
                attributes=attributes,
                time_limit=self.settings.timeout_seconds,
                size_limit=1000,
            )
        except CONNECTION_ERRORS:
            raise
        except LDAPException:
            return []
        _raise_if_disconnected(connection)
        return [
            {"dn": r["dn"], "attributes": dict(r.get("attributes") or {})}
            for r in connection.response or []
            if r.get("type") == "searchResEntry"
        ]


_DEFAULT_ATTRIBUTES = {
    "username": "uid",
    "email": "mail",
    "groups": "memberOf",
    "department": "departmentNumber",
}


def _raise_if_disconnected(connection: Connection) -> None:
    if connection.closed or (connection.result or {}).get("result") in (-1, 52, 81):
        raise LDAPCommunicationError("the directory connection failed")


def _all(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, (list, tuple)):
        return [str(v) for v in value]
    return [str(value)]


def _first(value: Any) -> str | None:
    values = _all(value)
    return values[0] if values else None
