"""A strict local double of Datadog's Logs intake v2 (no Datadog here): `POST /api/v2/logs`,
`DD-API-KEY` (403 when wrong or missing), a JSON array (gzip when `Content-Encoding: gzip`;
400 when not gzip as announced, not JSON or not an array of objects with a `message`), at most
1,000 entries and 5 MB uncompressed (413 otherwise), each entry at most 1 MB, `ddtags` a
comma-separated list of `key:value`. Answers 202 `{}`. Entries are kept deduplicated by their
`event_id` attribute; it can be told to answer 429 (with Retry-After) or 5xx."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from tests.peers.http_double import Answer, Request, serve_double

API_KEY = "dd-api-key-0c0c0c0c"
MAX_ENTRIES, MAX_BYTES = 1000, 5 * 1024 * 1024


def _errors(status: int, message: str) -> Answer:
    return Answer(status, {"errors": [{"status": str(status), "title": message}]})


@dataclass
class DatadogDouble:
    url: str = ""
    entries: dict[str, dict[str, Any]] = field(default_factory=dict)
    order: list[str] = field(default_factory=list)
    request_sizes: list[int] = field(default_factory=list)  # entries per accepted request
    failures: list[tuple[int, float | None]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def fail_next(self, count: int, status: int = 503, retry_after: float | None = None) -> None:
        self.failures.extend([(status, retry_after)] * count)

    def route(self, request: Request) -> Answer:  # noqa: PLR0911 - one answer per refusal
        if (request.method, request.path) != ("POST", "/api/v2/logs"):
            return _errors(404, "Not found")
        if request.headers.get("DD-API-KEY") != API_KEY:
            return _errors(403, "Forbidden")
        with self.lock:
            if self.failures:
                status, retry_after = self.failures.pop(0)
                answer = _errors(status, "Too many requests" if status == 429 else "Unavailable")
                if retry_after is not None:
                    answer.headers = {"Retry-After": f"{retry_after:g}"}
                return answer
        if request.headers.get("Content-Type") != "application/json":
            return _errors(415, "Unsupported media type")
        try:
            raw = request.decoded()
            entries = json.loads(raw)
        except ValueError:
            return _errors(400, "Bad request: not gzip-compressed JSON as announced")
        if len(raw) > MAX_BYTES or (isinstance(entries, list) and len(entries) > MAX_ENTRIES):
            return _errors(413, "Payload too large")
        problem = _entries_problem(entries)
        if problem is not None:
            return problem
        with self.lock:
            self.request_sizes.append(len(entries))
            for entry in entries:
                key = str(entry.get("event_id"))
                if key not in self.entries:
                    self.entries[key] = entry
                    self.order.append(key)
        return Answer(202, {})


def _entries_problem(entries: Any) -> Answer | None:
    if not isinstance(entries, list) or not entries:
        return _errors(400, "Bad request: an array of log entries is expected")
    for entry in entries:
        if not isinstance(entry, dict) or not isinstance(entry.get("message"), str):
            return _errors(400, "Bad request: every entry needs a message")
        if len(json.dumps(entry)) > 1024 * 1024:
            return _errors(413, "Log entry too large")
        tags = str(entry.get("ddtags", ""))
        if tags and not all(":" in t for t in tags.split(",")):
            return _errors(400, "Bad request: ddtags must be key:value pairs")
    return None


def start_datadog() -> tuple[DatadogDouble, Any]:
    double = DatadogDouble()
    double.url, server = serve_double(double.route)
    return double, server


@pytest.fixture
def datadog() -> Iterator[DatadogDouble]:
    double, server = start_datadog()
    try:
        yield double
    finally:
        server.shutdown()
        server.server_close()
