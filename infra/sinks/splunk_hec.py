"""Splunk HTTP Event Collector: `POST <url>/services/collector/event` with
`Authorization: Splunk <token>`, a batch as newline-joined JSON events, each
`{"time", "host", "source", "sourcetype", "index"?, "event", "fields"}`, and the channel header
`X-Splunk-Request-Channel`. With indexer acknowledgement on, the answer carries an `ackId`; the
batch counts as delivered only once `POST <url>/services/collector/ack?channel=<channel>` reports
it indexed (a batch not acknowledged within the timeout is sent again; Splunk deduplicates
nothing, the search does on `event.event_id`).

Splunk's own Python SDK speaks the management API, not HEC, so plain httpx it is.
"""

from __future__ import annotations

import json
import socket
import time
import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import msgspec

from domain.sinks import DELIVERED, NAMED_SEVERITY, Delivery, DeliveryFailed, SinkRecord
from infra.sinks import http

EVENT_PATH = "/services/collector/event"
ACK_PATH = "/services/collector/ack"
SOURCETYPE = "acgs:audit"
_encode_json = msgspec.json.Encoder().encode
ACK_POLL_SECONDS = 0.05


def endpoint(url: str, path: str) -> str:
    """`url` with its path replaced by `path` (the configured URL may name either endpoint)."""
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, path, "", ""))


class SplunkHec:
    def __init__(self, config: dict[str, Any]) -> None:
        self._url = endpoint(str(config["url"]), EVENT_PATH)
        self._ack_url = endpoint(str(config["url"]), ACK_PATH)
        self._index = config.get("index")
        self._ack = bool(config.get("indexer_ack", False))
        self._timeout = float(config.get("timeout_seconds", 5))
        self.channel = str(config.get("channel") or uuid.uuid4())
        self._headers = {
            "Authorization": f"Splunk {config['token']}",
            "X-Splunk-Request-Channel": self.channel,
            "Content-Type": "application/json",
        }
        self._host = socket.gethostname()
        self._http = http.client(config)

    def close(self) -> None:
        self._http.close()

    def event(self, record: SinkRecord) -> bytes:
        """One HEC event: Splunk's metadata and indexed fields, the record as `event` (its JSON
        text as it is, not encoded again)."""
        body = record.body
        fields = {
            "tenant_id": record.tenant_id,
            "tenant_slug": body.get("tenant_slug") or "",
            "event_id": record.event_id,
            "severity": NAMED_SEVERITY[record.severity],
            "constitutional_hash": body.get("constitutional_hash", ""),
        }
        head = {
            "time": _epoch(record.timestamp),
            "host": self._host,
            "source": "acgs",
            "sourcetype": SOURCETYPE,
            **({"index": self._index} if self._index else {}),
            "fields": fields,
        }
        return b"".join((_encode_json(head)[:-1], b',"event":', record.json_text.encode(), b"}"))

    def payload(self, records: Sequence[SinkRecord]) -> bytes:
        return b"\n".join(self.event(r) for r in records)

    def deliver(self, records: Sequence[SinkRecord]) -> Delivery:
        response = http.post(
            self._http, self._url, content=self.payload(records), headers=self._headers
        )
        http.raise_for_batch(response, "Splunk HEC")
        if self._ack:
            ack_id = _json(response).get("ackId")
            if not isinstance(ack_id, int):
                msg = "Splunk HEC answered without an ackId although indexer_ack is on"
                raise DeliveryFailed(msg)
            self._await_ack(ack_id)
        return DELIVERED

    def _await_ack(self, ack_id: int) -> None:
        deadline = time.monotonic() + self._timeout
        body = json.dumps({"acks": [ack_id]})
        while True:
            response = http.post(
                self._http,
                self._ack_url,
                params={"channel": self.channel},
                content=body,
                headers=self._headers,
            )
            http.raise_for_batch(response, "Splunk HEC ack")
            if _json(response).get("acks", {}).get(str(ack_id)) is True:
                return
            if time.monotonic() > deadline:
                msg = f"Splunk HEC has not indexed batch {ack_id} within {self._timeout:.0f} s"
                raise DeliveryFailed(msg)
            time.sleep(ACK_POLL_SECONDS)


def _json(response: Any) -> dict[str, Any]:
    try:
        value = response.json()
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _epoch(timestamp: str) -> float:
    try:
        return round(datetime.fromisoformat(timestamp).timestamp(), 3)
    except ValueError:
        return round(time.time(), 3)
