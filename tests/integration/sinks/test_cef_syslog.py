"""CEF over syslog against a real rsyslogd, over TCP and over TLS: the sink contract (rsyslog
parses every message as RFC 5424 with octet-counted framing), CEF escaping that survives the
trip, severity mapped to syslog's and CEF's scales, and failures (no receiver, an untrusted
certificate) reported as batch failures."""

from __future__ import annotations

import re
from typing import Any

import pytest

from domain.sinks import DeliveryFailed, Sink
from infra.sinks.cef_syslog import CefSyslog, escape_extension, escape_header, frame
from tests.integration.sinks.contract import SinkContract, records
from tests.peers.certificates import make_ca
from tests.peers.http import free_port
from tests.peers.rsyslog import Rsyslog

_EXTENSION_KEY = re.compile(r"(?:^| )([A-Za-z0-9]+)=")


def parse_cef(message: str) -> tuple[list[str], dict[str, str]]:
    """A CEF event's seven header fields and its extension, unescaped."""
    header: list[str] = []
    field, i = "", 0
    while len(header) < 7:
        char = message[i]
        if char == "\\" and message[i + 1] in "\\|":
            field += message[i + 1]
            i += 2
            continue
        if char == "|":
            header.append(field)
            field = ""
        else:
            field += char
        i += 1
    rest = message[i:]
    keys = [m for m in _EXTENSION_KEY.finditer(rest) if rest[m.start() - 1 : m.start()] != "\\"]
    extension = {}
    for n, match in enumerate(keys):
        end = keys[n + 1].start() if n + 1 < len(keys) else len(rest)
        raw = rest[match.end() : end]
        extension[match.group(1)] = re.sub(
            r"\\(.)", lambda m: {"n": "\n", "r": "\r"}.get(m.group(1), m.group(1)), raw
        )
    return header, extension


def body_of(message: dict[str, Any]) -> dict[str, Any]:
    header, ext = parse_cef(message["msg"])
    labels = {ext[k]: ext[k[:-5]] for k in ext if k.endswith("Label")}
    return {
        "event_id": ext["externalId"],
        "event_type": header[4],
        "severity": int(header[6]),
        "tenant_id": labels.get("tenantId"),
        "tenant_slug": labels.get("tenantSlug"),
        "constitutional_hash": labels.get("constitutionalHash"),
        "actor_roles": labels.get("actorRoles", "").split(","),
        "msg": ext["msg"],
        "outcome": ext.get("outcome"),
    }


class CefContract(SinkContract):
    tls = False

    def open(self, **overrides: Any) -> Sink:
        config = {
            "kind": "cef_syslog",
            "host": self.receiver.host,
            "port": self.receiver.port,
            "protocol": "tls" if self.tls else "tcp",
            "ca_cert_pem": self.receiver.ca_pem,
            "timeout_seconds": 2,
        }
        return CefSyslog(config | overrides)

    def _all(self) -> list[dict[str, Any]]:
        # Syslog has no acknowledgement: wait until rsyslog wrote what it received.
        previous = -1
        found = self.receiver.messages()
        while len(found) != previous:
            previous = len(found)
            found = self.receiver.wait_for(previous + 1, timeout=0.5)
        return found

    def received(self) -> list[str]:
        seen: dict[str, None] = {}
        for message in self._all():
            seen.setdefault(body_of(message)["event_id"], None)
        return list(seen)

    def received_bodies(self) -> list[dict[str, Any]]:
        return [body_of(m) for m in self._all()]

    def test_rsyslog_parses_rfc_5424_with_the_mapped_severity(self) -> None:
        sink = self.open()
        try:
            sink.deliver(records(1, result="denied"))
        finally:
            sink.close()
        [message] = self.receiver.wait_for(1)
        assert message["version"] == "1"
        assert message["app"] == "acgs"
        assert message["msgid"] == "audit"
        assert message["facility"] == "13"
        assert message["severity"] == "4"  # medium: warning
        assert message["sd"].startswith('[acgs@32473 event_id="')
        body = body_of(message)
        assert body["severity"] == 5  # medium on CEF's 0-10 scale
        assert body["outcome"] == "denied"

    def test_cef_escaping_survives_the_trip(self) -> None:
        sink = self.open()
        try:
            sink.deliver(records(1))
        finally:
            sink.close()
        [message] = self.receiver.wait_for(1)
        assert "\n" not in message["msg"]
        assert '"note": "pipes | back\\\\slash = equals\\nnewline"' in body_of(message)["msg"]


class TestCefOverTcp(CefContract):
    @pytest.fixture(autouse=True)
    def _receiver(self, rsyslog_tcp: Rsyslog) -> None:
        self.receiver = rsyslog_tcp


class TestCefOverTls(CefContract):
    tls = True

    @pytest.fixture(autouse=True)
    def _receiver(self, rsyslog_tls: Rsyslog) -> None:
        self.receiver = rsyslog_tls

    def test_an_untrusted_certificate_is_a_batch_failure(self) -> None:
        other, _ = make_ca("Not the syslog CA")
        sink = self.open(ca_cert_pem=other.cert_pem)
        try:
            with pytest.raises(DeliveryFailed, match="SSLCertVerificationError"):
                sink.deliver(records(1))
        finally:
            sink.close()
        assert self.receiver.messages() == []


def test_no_receiver_is_a_batch_failure() -> None:
    sink = CefSyslog({"host": "127.0.0.1", "port": free_port(), "protocol": "tcp"})
    with pytest.raises(DeliveryFailed, match="ConnectionRefusedError"):
        sink.deliver(records(1))


def test_escaping_rules() -> None:
    assert escape_header("a|b\\c\nd") == "a\\|b\\\\c d"
    assert escape_extension("a=b\\c\nd|e") == "a\\=b\\\\c\\nd|e"
    assert frame(b"<14>1 - - - - - hi") == b"18 <14>1 - - - - - hi"
