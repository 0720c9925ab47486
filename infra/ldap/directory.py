"""One LDAP directory as an integration configures it (ldap3): how to reach it (ldaps:// or
StartTLS, the CA to trust, TLS 1.2 or later, the host name checked, timeouts) and how to bind.

`LdapDirectory.check()` is the connectivity test: connect (and StartTLS), bind as the service
account, run one search (the base DN, scope base), each step reported. Sign-in builds on
`connect()`/`bind()` (a pool of service connections and user binds use the same pieces).
An empty password is refused before any bind: ldap3 would turn it into an anonymous bind that
succeeds.
"""

from __future__ import annotations

import contextlib
import ssl
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from ldap3 import BASE, NONE, Connection, Server, Tls
from ldap3.core.exceptions import LDAPException, LDAPSocketOpenError, LDAPStartTLSError

from domain.integration.probe import ProbeFailure, ProbeResult

INVALID_CREDENTIALS = 49


class EmptyPassword(ValueError):
    """A bind with an empty password (an anonymous bind in disguise) is refused."""


@dataclass(frozen=True)
class DirectorySettings:
    host: str
    port: int
    use_ssl: bool
    start_tls: bool
    tls_verify: bool
    ca_cert_pem: str | None
    base_dn: str
    bind_dn: str
    bind_password: str
    timeout_seconds: int
    pool_size: int
    user_search_filter: str
    group_search_filter: str
    attribute_map: dict[str, str]

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> DirectorySettings:
        url = urlsplit(config["server_url"])
        use_ssl = url.scheme == "ldaps"
        return cls(
            host=url.hostname or "",
            port=url.port or (636 if use_ssl else 389),
            use_ssl=use_ssl,
            start_tls=bool(config.get("start_tls", False)),
            tls_verify=bool(config.get("tls_verify", True)),
            ca_cert_pem=config.get("ca_cert_pem"),
            base_dn=config["base_dn"],
            bind_dn=config["bind_dn"],
            bind_password=config["bind_password"],
            timeout_seconds=int(config.get("timeout_seconds", 5)),
            pool_size=int(config.get("connection_pool_size", 10)),
            user_search_filter=config.get("user_search_filter", "(uid={username})"),
            group_search_filter=config.get("group_search_filter", "(member={user_dn})"),
            attribute_map=dict(config.get("attribute_map", {})),
        )


class LdapDirectory:
    def __init__(self, settings: DirectorySettings) -> None:
        self.settings = settings
        self.server = Server(
            settings.host,
            port=settings.port,
            use_ssl=settings.use_ssl,
            tls=self._tls(),
            connect_timeout=settings.timeout_seconds,
            get_info=NONE,
        )

    def _tls(self) -> Tls | None:
        s = self.settings
        if not (s.use_ssl or s.start_tls):
            return None
        # version None: ldap3 uses ssl.create_default_context (TLS 1.2 at least) and checks the
        # host name itself when validating.
        return Tls(
            validate=ssl.CERT_REQUIRED if s.tls_verify else ssl.CERT_NONE,
            ca_certs_data=s.ca_cert_pem or None,
        )

    def connect(self, user: str, password: str) -> Connection:
        """An open (and, with start_tls, encrypted) connection, not yet bound."""
        if not password:
            raise EmptyPassword("an empty password is refused before any bind")
        connection = Connection(
            self.server,
            user=user,
            password=password,
            receive_timeout=self.settings.timeout_seconds,
            raise_exceptions=False,
            auto_bind="NONE",
            read_only=True,
        )
        try:
            connection.open()
            if self.settings.start_tls and not connection.start_tls():
                raise LDAPStartTLSError("StartTLS was refused")
        except BaseException:
            _close(connection)
            raise
        return connection

    def check(self) -> ProbeResult:
        started = time.perf_counter()
        s = self.settings

        def result(**kw: Any) -> ProbeResult:
            return ProbeResult(latency_ms=round((time.perf_counter() - started) * 1000), **kw)

        try:
            connection = self.connect(s.bind_dn, s.bind_password)
        except EmptyPassword:
            return result(
                connection_established=False,
                authentication_successful=False,
                test_query_executed=False,
                failure=ProbeFailure.AUTH_FAILED,
                message="the bind password is empty",
            )
        except (LDAPSocketOpenError, LDAPStartTLSError, LDAPException, OSError) as exc:
            return result(
                connection_established=False,
                authentication_successful=False,
                test_query_executed=False,
                failure=ProbeFailure.UNREACHABLE,
                message=f"cannot reach the directory at {s.host}:{s.port} ({_reason(exc)})",
            )
        try:
            if not connection.bind():
                code = connection.result.get("result") if connection.result else None
                return result(
                    connection_established=True,
                    authentication_successful=False,
                    test_query_executed=False,
                    failure=ProbeFailure.AUTH_FAILED,
                    message="the directory refused the service account's credentials"
                    + (" (invalid credentials)" if code == INVALID_CREDENTIALS else ""),
                )
            found = connection.search(
                s.base_dn, "(objectClass=*)", search_scope=BASE, attributes=[]
            )
            if not found:
                return result(
                    connection_established=True,
                    authentication_successful=True,
                    test_query_executed=False,
                    failure=ProbeFailure.QUERY_FAILED,
                    message="the search of base_dn found nothing",
                )
            return result(
                connection_established=True,
                authentication_successful=True,
                test_query_executed=True,
            )
        except (LDAPException, OSError) as exc:
            return result(
                connection_established=False,
                authentication_successful=False,
                test_query_executed=False,
                failure=ProbeFailure.UNREACHABLE,
                message=f"the directory connection failed ({_reason(exc)})",
            )
        finally:
            _close(connection)


def _reason(exc: BaseException) -> str:
    """The kind of failure, never the server's text (it could echo what we sent)."""
    text = str(exc).lower()
    if "certificate" in text or "ssl" in text or "tls" in text or "hostname" in text:
        return "TLS handshake or certificate validation failed"
    if "timed out" in text or "timeout" in text:
        return "timed out"
    if "refused" in text:
        return "connection refused"
    return type(exc).__name__


def _close(connection: Connection) -> None:
    """Unbind, and close the socket even when the connection never got far enough to unbind
    (ldap3 leaves it open after a failed TLS handshake)."""
    with contextlib.suppress(LDAPException, OSError):
        connection.unbind()
    sock = getattr(connection, "socket", None)
    if sock is not None:
        sock.close()
