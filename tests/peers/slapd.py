"""A real OpenLDAP server (Debian's slapd) for the test session: its own slapd.conf in a temp
dir (mdb, the memberof overlay, core/cosine/nis/inetorgperson schemas, TLS from a CA made
here), listening on ldap:// (StartTLS) and ldaps:// on free 127.0.0.1 ports, loaded with a
service account, users (alice, bob, admin, and carol whose account is locked through the
ppolicy overlay) and groups (`groupOfNames` executives and auditors, `posixGroup` developers)
by ldapadd, stopped by its PID at the end.

Missing slapd is a failure naming the install step, never a skip."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.peers.certificates import issue_server_cert, make_ca
from tests.peers.http import free_port

BASE_DN = "dc=acme,dc=test"
ROOT_DN = f"cn=admin,{BASE_DN}"
SERVICE_DN = f"cn=acgs,ou=services,{BASE_DN}"
INSTALL = (
    "slapd is not installed: run `make system-deps` as root (apt-get install -y "
    "--no-install-recommends slapd ldap-utils)"
)


@dataclass(frozen=True)
class Slapd:
    host: str
    ldap_port: int
    ldaps_port: int
    ca_pem: str
    other_ca_pem: str  # a CA that signed nothing here: trusting it must fail
    service_dn: str
    service_password: str
    base_dn: str = BASE_DN
    root_password: str = ""

    def change(self, ldif: str) -> None:
        """Apply an LDIF change (add, modify, delete entries) as the directory's root."""
        subprocess.run(
            [_binary("ldapmodify"), "-x", "-H", self.ldap_url, "-D", ROOT_DN, "-w",
             self.root_password],
            input=ldif.encode(),
            check=True,
            capture_output=True,
            timeout=30,
        )  # fmt: skip

    @property
    def ldap_url(self) -> str:
        return f"ldap://{self.host}:{self.ldap_port}"

    @property
    def ldaps_url(self) -> str:
        return f"ldaps://{self.host}:{self.ldaps_port}"


def _binary(name: str) -> str:
    found = shutil.which(name) or shutil.which(name, path="/usr/sbin:/usr/bin")
    if found is None:
        pytest.fail(INSTALL)
    return found


def _config(work: Path, root_password: str) -> str:
    schema = Path("/etc/ldap/schema")
    includes = "\n".join(
        f"include {schema / n}.schema" for n in ("core", "cosine", "nis", "inetorgperson")
    )
    return f"""{includes}
modulepath /usr/lib/ldap
moduleload back_mdb
moduleload memberof
moduleload ppolicy
pidfile {work}/slapd.pid
argsfile {work}/slapd.args
TLSCACertificateFile {work}/ca.pem
TLSCertificateFile {work}/server.pem
TLSCertificateKeyFile {work}/server.key
database mdb
maxsize 10485760
suffix "{BASE_DN}"
rootdn "{ROOT_DN}"
rootpw {root_password}
directory {work}/db
overlay memberof
overlay ppolicy
ppolicy_default "cn=default,ou=policies,{BASE_DN}"
access to attrs=userPassword by self write by anonymous auth by * none
access to * by users read by * none
"""


def _entries(service_password: str) -> str:
    return f"""dn: {BASE_DN}
objectClass: dcObject
objectClass: organization
o: Acme Test
dc: acme

dn: ou=services,{BASE_DN}
objectClass: organizationalUnit
ou: services

dn: ou=people,{BASE_DN}
objectClass: organizationalUnit
ou: people

dn: ou=groups,{BASE_DN}
objectClass: organizationalUnit
ou: groups

dn: {SERVICE_DN}
objectClass: person
cn: acgs
sn: service
userPassword: {service_password}

dn: uid=alice,ou=people,{BASE_DN}
objectClass: inetOrgPerson
uid: alice
cn: Alice Example
sn: Example
mail: alice@acme.test
userPassword: alice-password

dn: cn=executives,ou=groups,{BASE_DN}
objectClass: groupOfNames
cn: executives
member: uid=alice,ou=people,{BASE_DN}

dn: ou=policies,{BASE_DN}
objectClass: organizationalUnit
ou: policies

dn: cn=default,ou=policies,{BASE_DN}
objectClass: pwdPolicy
objectClass: person
cn: default
sn: policy
pwdAttribute: userPassword
pwdLockout: TRUE

dn: uid=bob,ou=people,{BASE_DN}
objectClass: inetOrgPerson
uid: bob
cn: Bob Example
sn: Example
mail: bob@acme.test
userPassword: bob-password

dn: uid=carol,ou=people,{BASE_DN}
objectClass: inetOrgPerson
uid: carol
cn: Carol Disabled
sn: Disabled
mail: carol@acme.test
userPassword: carol-password
pwdAccountLockedTime: 000001010000Z

dn: uid=admin,ou=people,{BASE_DN}
objectClass: inetOrgPerson
uid: admin
cn: Directory Admin Lookalike
sn: Admin
userPassword: admin-password

dn: cn=auditors,ou=groups,{BASE_DN}
objectClass: groupOfNames
cn: auditors
member: uid=alice,ou=people,{BASE_DN}
member: uid=bob,ou=people,{BASE_DN}

dn: cn=developers,ou=groups,{BASE_DN}
objectClass: posixGroup
cn: developers
gidNumber: 5001
memberUid: bob
"""


def _wait_listening(port: int, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"slapd exited at start:\n{log.read_text()[-2000:]}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.02)
    pytest.fail("slapd did not listen within 15 s")


@contextmanager
def running_slapd(work: Path) -> Iterator[Slapd]:
    """A loaded slapd with its files under `work`, stopped by its PID afterwards (used by the
    session fixture and the benchmarks)."""
    binary, ldapadd = _binary("slapd"), _binary("ldapadd")
    (work / "db").mkdir()
    ca, ca_key = make_ca()
    other, _ = make_ca("Some other CA")
    server = issue_server_cert(ca, ca_key)
    (work / "ca.pem").write_text(ca.cert_pem)
    (work / "server.pem").write_text(server.cert_pem)
    (work / "server.key").write_text(server.key_pem)
    root_password, service_password = os.urandom(12).hex(), "svc-" + os.urandom(8).hex()
    (work / "slapd.conf").write_text(_config(work, root_password))
    ldap_port, ldaps_port = free_port(), free_port()
    log = work / "slapd.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [
                binary,
                "-f",
                str(work / "slapd.conf"),
                "-d",
                "0",
                "-h",
                f"ldap://127.0.0.1:{ldap_port}/ ldaps://127.0.0.1:{ldaps_port}/",
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        _wait_listening(ldap_port, process, log)
        (work / "entries.ldif").write_text(_entries(service_password))
        subprocess.run(
            [
                ldapadd,
                "-x",
                "-H",
                f"ldap://127.0.0.1:{ldap_port}",
                "-D",
                ROOT_DN,
                "-w",
                root_password,
                "-f",
                str(work / "entries.ldif"),
            ],
            check=True,
            capture_output=True,
            timeout=30,
        )
        yield Slapd(
            "127.0.0.1",
            ldap_port,
            ldaps_port,
            ca.cert_pem,
            other.cert_pem,
            SERVICE_DN,
            service_password,
            root_password=root_password,
        )
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture(scope="session")
def slapd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Slapd]:
    with running_slapd(tmp_path_factory.mktemp("slapd")) as server:
        yield server
