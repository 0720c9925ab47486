"""The LDAP connectivity check against a real slapd: LDAPS and StartTLS validated against the
fixture's CA, an unknown CA refused, a wrong password, a server that is down, an empty
password refused before any bind."""

from __future__ import annotations

import contextlib
import re
import socket
import threading
from typing import Any

import pytest

from domain.integration.probe import ProbeFailure
from domain.integration.schemas import LDAP
from infra.ldap.directory import DirectorySettings, LdapDirectory
from tests.peers.http import free_port
from tests.peers.slapd import Slapd

pytestmark = pytest.mark.ldap


def _check(slapd: Slapd, **overrides: Any) -> Any:
    production = overrides.pop("production", True)
    config = LDAP.validate(
        {
            "server_url": slapd.ldaps_url,
            "base_dn": slapd.base_dn,
            "bind_dn": slapd.service_dn,
            "bind_password": slapd.service_password,
            "ca_cert_pem": slapd.ca_pem,
            "timeout_seconds": 2,
            **overrides,
        },
        production=production,
    )
    return LdapDirectory(DirectorySettings.from_config(config)).check()


def test_ldaps_with_the_right_ca_connects_binds_and_searches(slapd: Slapd) -> None:
    result = _check(slapd)
    assert result.failure is None, result.message
    assert (
        result.connection_established,
        result.authentication_successful,
        result.test_query_executed,
    ) == (True, True, True)
    assert result.latency_ms >= 0


def test_start_tls_on_plain_ldap_works(slapd: Slapd) -> None:
    result = _check(slapd, server_url=slapd.ldap_url, start_tls=True)
    assert result.failure is None, result.message


def test_an_unknown_ca_is_refused(slapd: Slapd) -> None:
    result = _check(slapd, ca_cert_pem=slapd.other_ca_pem)
    assert result.failure is ProbeFailure.UNREACHABLE
    assert "certificate" in result.message


def test_a_wrong_password_is_an_auth_failure(slapd: Slapd) -> None:
    result = _check(slapd, bind_password="not-the-password")
    assert result.failure is ProbeFailure.AUTH_FAILED
    assert (result.connection_established, result.authentication_successful) == (True, False)
    assert "invalid credentials" in result.message


def test_a_server_that_is_down_is_unreachable(slapd: Slapd) -> None:
    result = _check(slapd, server_url=f"ldaps://127.0.0.1:{free_port()}")
    assert result.failure is ProbeFailure.UNREACHABLE
    assert result.connection_established is False


def test_an_empty_password_is_refused_before_any_bind(slapd: Slapd) -> None:
    settings = DirectorySettings.from_config(
        {
            **LDAP.validate(
                {
                    "server_url": slapd.ldaps_url,
                    "base_dn": slapd.base_dn,
                    "bind_dn": slapd.service_dn,
                    "bind_password": "x",
                    "ca_cert_pem": slapd.ca_pem,
                },
                production=True,
            ),
            "bind_password": "",
        }
    )
    result = LdapDirectory(settings).check()
    assert result.failure is ProbeFailure.AUTH_FAILED
    assert result.connection_established is False


def test_plain_ldap_outside_production_works(slapd: Slapd) -> None:
    result = _check(slapd, server_url=slapd.ldap_url, production=False, tls_verify=False)
    assert result.failure is None, result.message


def test_a_base_dn_that_is_not_there_is_a_query_failure(slapd: Slapd) -> None:
    result = _check(slapd, base_dn="ou=nowhere,dc=invalid")
    assert result.failure is ProbeFailure.QUERY_FAILED
    assert (result.authentication_successful, result.test_query_executed) == (True, False)


class FakeDirectory:
    """A TCP server on 127.0.0.1 that accepts connections and then either never answers
    (`hang_up=False`) or closes each at once."""

    def __init__(self, *, hang_up: bool) -> None:
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = int(self.server.getsockname()[1])
        self.hang_up = hang_up
        self.accepted: list[socket.socket] = []
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        with contextlib.suppress(OSError):  # the server socket closed: done
            while True:
                conn, _ = self.server.accept()
                if self.hang_up:
                    conn.close()
                else:
                    self.accepted.append(conn)

    def close(self) -> None:
        self.server.close()
        self.thread.join(5)
        for conn in self.accepted:
            conn.close()


@pytest.mark.parametrize(
    ("hang_up", "reason"),
    [(False, r"timed out"), (True, r"LDAP(Socket(Receive|Send)|SessionTerminatedByServer)Error")],
)
def test_a_directory_that_never_answers_or_hangs_up_is_unreachable(
    slapd: Slapd, hang_up: bool, reason: str
) -> None:
    fake = FakeDirectory(hang_up=hang_up)
    try:
        result = _check(
            slapd,
            server_url=f"ldap://127.0.0.1:{fake.port}",
            production=False,
            tls_verify=False,
            timeout_seconds=1,
        )
    finally:
        fake.close()
    assert result.failure is ProbeFailure.UNREACHABLE
    assert re.fullmatch(rf"the directory connection failed \({reason}\)", result.message)
    assert slapd.service_password not in result.message
