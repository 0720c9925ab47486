"""Datadog Logs intake v2: `POST <url>/api/v2/logs` (the site's intake, e.g.
`https://http-intake.logs.datadoghq.eu`) with `DD-API-KEY`, a gzip-compressed JSON array of
log entries, at most 1,000 entries and 5 MB (uncompressed) per request: a larger batch is sent
in several requests, all of which must be accepted (202) for the batch to count. Each entry
carries `ddsource`, `service`, `hostname`, `status` (the severity, as Datadog names it),
`ddtags` (tenant, tenant slug, constitutional hash, alert), the record as `message` and its
`event_id` as an attribute for deduplication.

`datadog-api-client` generates a model object per entry and brings its own HTTP stack; the wire
call is small, and the runner owns retries, so plain httpx it is.
"""

from __future__ import annotations

import gzip
import json
import socket
from collections.abc import Sequence
from typing import Any

from domain.sinks import DATADOG_STATUS, DELIVERED, Delivery, SinkRecord
from infra.sinks import http

INTAKE_PATH = "/api/v2/logs"
MAX_ENTRIES = 1000
MAX_BYTES = 5 * 1024 * 1024
MAX_ENTRY_BYTES = 1024 * 1024


def _tag(value: object) -> str:
    return str(value).replace(",", "_").replace(" ", "_")


class DatadogLogs:
    def __init__(self, config: dict[str, Any]) -> None:
        base = str(config["url"]).rstrip("/")
        self._url = base if base.endswith(INTAKE_PATH) else base + INTAKE_PATH
        self._headers = {
            "DD-API-KEY": str(config["api_key"]),
            "Content-Type": "application/json",
            "Content-Encoding": "gzip",
        }
        self._hostname = socket.gethostname()
        self._http = http.client(config)

    def close(self) -> None:
        self._http.close()

    def entry(self, record: SinkRecord) -> dict[str, Any]:
        body = record.body
        tags = [
            f"tenant_id:{record.tenant_id}",
            f"tenant:{_tag(body.get('tenant_slug') or 'unknown')}",
            f"constitutional_hash:{body.get('constitutional_hash', '')}",
            f"event_type:{_tag(record.event_type)}",
        ]
        if record.alert:
            tags.append(f"alert:{record.alert}")
        return {
            "ddsource": "acgs",
            "service": "acgs",
            "hostname": self._hostname,
            "status": DATADOG_STATUS[record.severity],
            "ddtags": ",".join(tags),
            "event_id": record.event_id,
            "message": record.json_text,
        }

    def requests(self, records: Sequence[SinkRecord]) -> list[list[dict[str, Any]]]:
        """The entries cut to Datadog's limits (1,000 entries, 5 MB per request)."""
        out: list[list[dict[str, Any]]] = []
        current: list[dict[str, Any]] = []
        size = 2
        for record in records:
            entry = self.entry(record)
            entry_size = len(json.dumps(entry)) + 1
            if current and (len(current) >= MAX_ENTRIES or size + entry_size > MAX_BYTES):
                out.append(current)
                current, size = [], 2
            current.append(entry)
            size += entry_size
        if current:
            out.append(current)
        return out

    def deliver(self, records: Sequence[SinkRecord]) -> Delivery:
        for entries in self.requests(records):
            payload = gzip.compress(json.dumps(entries, separators=(",", ":")).encode(), 6)
            response = http.post(self._http, self._url, content=payload, headers=self._headers)
            http.raise_for_batch(response, "Datadog")
        return DELIVERED
