"""Elasticsearch or OpenSearch `_bulk`: `POST <url>/_bulk` with `Content-Type:
application/x-ndjson`, each record as an `index` action whose `_id` is the event id (a record
sent twice overwrites itself: the receiver deduplicates by construction) followed by the record,
the body ending with a newline. The answer lists every item: an item with a status of 300 or more
is refused alone (`Delivery.failed`, with its error type and reason), and only those are tried
again. Basic authentication when `username` and `password` are set.

The official clients (elasticsearch-py, opensearch-py) wrap the same call with their own
transport and retry policy; the runner owns retries here, so plain httpx it is.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import httpx

from domain.sinks import NAMED_SEVERITY, Delivery, DeliveryFailed, SinkRecord
from infra.sinks import http

DEFAULT_INDEX = "acgs-audit"
_ERROR_THRESHOLD = 300


class ElasticsearchBulk:
    def __init__(self, config: dict[str, Any]) -> None:
        self._url = str(config["url"]).rstrip("/") + "/_bulk"
        self._index = str(config.get("index") or DEFAULT_INDEX)
        auth = None
        if config.get("username") and config.get("password"):
            auth = httpx.BasicAuth(str(config["username"]), str(config["password"]))
        self._auth = auth
        self._http = http.client(config)

    def close(self) -> None:
        self._http.close()

    def payload(self, records: Sequence[SinkRecord]) -> bytes:
        lines = []
        for record in records:
            action = {"index": {"_index": self._index, "_id": record.event_id}}
            document = {
                **record.body,
                "@timestamp": record.timestamp,
                "event": {
                    "severity": int(record.severity),
                    "kind": "alert" if record.alert else "event",
                },
                "severity_name": NAMED_SEVERITY[record.severity],
            }
            lines.append(json.dumps(action, separators=(",", ":")))
            lines.append(json.dumps(document, separators=(",", ":")))
        return ("\n".join(lines) + "\n").encode()

    def deliver(self, records: Sequence[SinkRecord]) -> Delivery:
        response = http.post(
            self._http,
            self._url,
            content=self.payload(records),
            headers={"Content-Type": "application/x-ndjson"},
            auth=self._auth,
        )
        http.raise_for_batch(response, "Elasticsearch")
        try:
            answer = response.json()
            items = answer["items"]
        except (ValueError, KeyError, TypeError) as exc:
            raise DeliveryFailed("Elasticsearch answered _bulk without items") from exc
        if len(items) != len(records):
            msg = f"Elasticsearch answered {len(items)} items for {len(records)} records"
            raise DeliveryFailed(msg)
        failed: dict[str, str] = {}
        for record, item in zip(records, items, strict=True):
            result: dict[str, Any] = next(iter(item.values()), {})
            if int(result.get("status", 500)) >= _ERROR_THRESHOLD:
                error = result.get("error") or {}
                failed[record.event_id] = (
                    f"{result.get('status')} {error.get('type', 'error')}: "
                    f"{str(error.get('reason', ''))[:200]}"
                )
        return Delivery(failed=failed)
