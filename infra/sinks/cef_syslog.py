"""CEF over syslog, for Splunk, ArcSight and QRadar: each record is one RFC 5424 message whose
MSG is a CEF event, framed by octet counting (RFC 6587, `<length> <message>`) over TCP, or over
TLS (RFC 5425) verified against the configured CA.

    <109>1 2026-12-01T12:00:01+00:00 host acgs - audit [acgs@32473 event_id="..."] CEF:0|ACGS|...

The priority is facility 13 (log audit) with the record's severity mapped to syslog's
(`SYSLOG_SEVERITY`); CEF's severity field is 0-10 (`CEF_SEVERITY`). CEF escaping: `\\` and `|` in
header fields, `\\`, `=` and newlines in extension values. Syslog has no acknowledgement above
TCP: a batch counts as delivered once it is written to the connection without error (a broken
connection is reopened for the next attempt, the batch sent again; receivers dedupe on
`externalId`, the event id).
"""

from __future__ import annotations

import json
import select
import socket
import ssl
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from domain.sinks import (
    CEF_SEVERITY,
    DELIVERED,
    SYSLOG_SEVERITY,
    Delivery,
    DeliveryFailed,
    SinkRecord,
)

FACILITY = 13  # log audit
APP_NAME = "acgs"
SD_ID = "acgs@32473"  # 32473: the private enterprise number reserved for examples (RFC 5612)
VENDOR, PRODUCT, VERSION = "ACGS", "ACGS Enterprise", "1.0"


def escape_header(value: object) -> str:
    """A CEF header field: backslash and pipe escaped; a newline cannot appear, so it is a space."""
    text = str(value).replace("\\", "\\\\").replace("|", "\\|")
    return text.replace("\r\n", " ").replace("\n", " ").replace("\r", " ")


def escape_extension(value: object) -> str:
    """A CEF extension value: backslash, equals sign and newlines escaped."""
    text = str(value).replace("\\", "\\\\").replace("=", "\\=")
    return text.replace("\r\n", "\\n").replace("\n", "\\n").replace("\r", "\\r")


def _sd_value(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("]", "\\]")


def cef(record: SinkRecord) -> str:
    body = record.body
    custom = [
        ("tenantId", body.get("tenant_id")),
        ("tenantSlug", body.get("tenant_slug")),
        ("constitutionalHash", body.get("constitutional_hash")),
        ("actorRoles", ",".join(body.get("actor_roles") or [])),
        ("alert", body.get("alert")),
        ("targetResource", body.get("target_resource")),
    ]
    extension: list[tuple[str, Any]] = [
        ("rt", _millis(record.timestamp)),
        ("externalId", record.event_id),
        ("cat", body.get("event_category")),
        ("act", body.get("action")),
        ("outcome", body.get("result")),
        ("suser", body.get("actor_id")),
        ("cn1Label", "logPosition"),
        ("cn1", record.position),
    ]
    for n, (label, value) in enumerate(custom, start=1):
        if value not in (None, ""):
            extension += [(f"cs{n}Label", label), (f"cs{n}", value)]
    extension.append(("msg", json.dumps(body.get("details", {}), sort_keys=True)))
    header = "|".join(
        escape_header(v)
        for v in (
            "CEF:0",
            VENDOR,
            PRODUCT,
            VERSION,
            record.event_type,
            record.alert or record.event_type,
            CEF_SEVERITY[record.severity],
        )
    )
    ext = " ".join(f"{k}={escape_extension(v)}" for k, v in extension if v is not None)
    return f"{header}|{ext}"


def syslog_message(record: SinkRecord, hostname: str) -> bytes:
    priority = FACILITY * 8 + SYSLOG_SEVERITY[record.severity]
    msgid = "alert" if record.alert else "audit"
    sd = f'[{SD_ID} event_id="{_sd_value(record.event_id)}"]'
    timestamp = record.timestamp or datetime.now(UTC).isoformat()
    line = f"<{priority}>1 {timestamp} {hostname} {APP_NAME} - {msgid} {sd} {cef(record)}"
    return line.encode("utf-8")


def frame(message: bytes) -> bytes:
    """RFC 6587 octet counting: the length in bytes, a space, the message."""
    return str(len(message)).encode() + b" " + message


class CefSyslog:
    def __init__(self, config: dict[str, Any]) -> None:
        self._host = str(config["host"])
        self._port = int(config["port"])
        self._tls = config.get("protocol", "tls") == "tls"
        self._timeout = float(config.get("timeout_seconds", 5))
        self._context: ssl.SSLContext | None = None
        if self._tls:
            ca = config.get("ca_cert_pem")
            self._context = ssl.create_default_context(cadata=str(ca) if ca else None)
        self._hostname = socket.gethostname() or "-"
        self._socket: socket.socket | None = None

    def _connect(self) -> socket.socket:
        if self._socket is not None and _closed_by_peer(self._socket):
            self.close()  # the receiver hung up since the last batch: reconnect, lose nothing
        if self._socket is None:
            raw = socket.create_connection((self._host, self._port), timeout=self._timeout)
            if self._context is not None:
                try:
                    raw = self._context.wrap_socket(raw, server_hostname=self._host)
                except BaseException:
                    raw.close()
                    raise
            self._socket = raw
        return self._socket

    def deliver(self, records: Sequence[SinkRecord]) -> Delivery:
        data = b"".join(frame(syslog_message(r, self._hostname)) for r in records)
        try:
            self._connect().sendall(data)
        except (OSError, ssl.SSLError) as exc:
            self.close()
            msg = f"cannot send to syslog {self._host}:{self._port} ({type(exc).__name__})"
            raise DeliveryFailed(msg) from exc
        return DELIVERED

    def close(self) -> None:
        if self._socket is not None:
            try:
                self._socket.close()
            finally:
                self._socket = None


def _closed_by_peer(sock: socket.socket) -> bool:
    """Whether the receiver hung up: a syslog receiver never sends, so anything to read on the
    connection (its end of stream, a TLS close_notify) means it is closing."""
    try:
        readable, _, _ = select.select([sock], [], [], 0)
    except (OSError, ValueError):
        return True
    return bool(readable)


def _millis(timestamp: str) -> int | None:
    try:
        return int(datetime.fromisoformat(timestamp).timestamp() * 1000)
    except ValueError:
        return None
