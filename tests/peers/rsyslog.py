"""A real rsyslogd as the syslog receiver of the CEF sink: Debian's rsyslog, started from a config
file of its own on a free 127.0.0.1 port, receiving over TCP (`imtcp`) or TLS (`imtcp` with the
`gtls` driver, package rsyslog-gnutls, and a throwaway CA), writing every message it parsed as
one JSON object per line (its RFC 5424 fields as rsyslog parsed them) to a file the test reads.
Stopped by its PID. A missing rsyslog fails naming the install step."""

from __future__ import annotations

import json
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.peers.certificates import issue_server_cert, make_ca
from tests.peers.http import free_port

INSTALL = (
    "rsyslogd (with its TLS driver) is not installed: run `make system-deps` as root "
    "(apt-get install rsyslog rsyslog-gnutls)"
)
_TEMPLATE = """template(name="parsed" type="list") {
    constant(value="{")
    property(name="syslogfacility" outname="facility" format="jsonf") constant(value=",")
    property(name="syslogseverity" outname="severity" format="jsonf") constant(value=",")
    property(name="app-name" outname="app" format="jsonf") constant(value=",")
    property(name="msgid" outname="msgid" format="jsonf") constant(value=",")
    property(name="structured-data" outname="sd" format="jsonf") constant(value=",")
    property(name="protocol-version" outname="version" format="jsonf") constant(value=",")
    property(name="msg" outname="msg" format="jsonf" droplastlf="on")
    constant(value="}\\n")
}
"""


@dataclass
class Rsyslog:
    host: str
    port: int
    tls: bool
    ca_pem: str
    output: Path

    def messages(self) -> list[dict[str, Any]]:
        """The messages rsyslog has written in full (a last line without its newline is still
        being written, and is read next time)."""
        if not self.output.exists():
            return []
        text = self.output.read_text(encoding="utf-8")
        complete = text[: text.rfind("\n") + 1]
        return [json.loads(line) for line in complete.splitlines() if line.strip()]

    def wait_for(self, count: int, timeout: float = 10.0) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        while True:
            found = self.messages()
            if len(found) >= count or time.monotonic() > deadline:
                return found
            time.sleep(0.02)


def _binary() -> str:
    found = shutil.which("rsyslogd") or shutil.which("rsyslogd", path="/usr/sbin:/usr/bin")
    if found is None or not list(Path("/usr/lib").glob("*/rsyslog/lmnsd_gtls.so")):
        pytest.fail(INSTALL)
    return found


def _config(work: Path, port: int, *, tls: bool) -> str:
    driver = ""
    if tls:
        driver = (
            f'global(DefaultNetstreamDriverCAFile="{work / "ca.pem"}" '
            f'DefaultNetstreamDriverCertFile="{work / "server.pem"}" '
            f'DefaultNetstreamDriverKeyFile="{work / "server.key"}")\n'
        )
        module = (
            'module(load="imtcp" StreamDriver.Name="gtls" StreamDriver.Mode="1" '
            'StreamDriver.AuthMode="anon")\n'
        )
    else:
        module = 'module(load="imtcp")\n'
    return (
        f'global(workDirectory="{work}" maxMessageSize="64k")\n'
        + driver
        + module
        + f'input(type="imtcp" address="127.0.0.1" port="{port}")\n'
        + _TEMPLATE
        + f'action(type="omfile" file="{work / "received.jsonl"}" template="parsed" '
        'flushOnTXEnd="on" asyncWriting="off")\n'
    )


def _wait_listening(port: int, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"rsyslogd exited at start:\n{log.read_text()[-2000:]}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.02)
    pytest.fail("rsyslogd did not listen within 15 s")


@contextmanager
def running_rsyslog(work: Path, *, tls: bool) -> Iterator[Rsyslog]:
    binary = _binary()
    ca, ca_key = make_ca("ACGS syslog test CA")
    server = issue_server_cert(ca, ca_key)
    (work / "ca.pem").write_text(ca.cert_pem)
    (work / "server.pem").write_text(server.cert_pem)
    (work / "server.key").write_text(server.key_pem)
    port = free_port()
    (work / "rsyslog.conf").write_text(_config(work, port, tls=tls))
    log = work / "rsyslogd.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [binary, "-n", "-f", str(work / "rsyslog.conf"), "-i", str(work / "rsyslogd.pid")],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        _wait_listening(port, process, log)
        yield Rsyslog("127.0.0.1", port, tls, ca.cert_pem, work / "received.jsonl")
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture
def rsyslog_tcp(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Rsyslog]:
    with running_rsyslog(tmp_path_factory.mktemp("rsyslog-tcp"), tls=False) as server:
        yield server


@pytest.fixture
def rsyslog_tls(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Rsyslog]:
    with running_rsyslog(tmp_path_factory.mktemp("rsyslog-tls"), tls=True) as server:
        yield server
