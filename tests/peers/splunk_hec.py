"""A strict local double of Splunk's HTTP Event Collector, on 127.0.0.1 (no Splunk can run here).

It checks the wire contract as Splunk does and answers with Splunk's codes: the token
(`Authorization: Splunk <token>`; 401 code 2 when missing, 403 code 4 when wrong), the path, the
channel header (400 code 10 when indexer acknowledgement is on and it is missing), and every
event of the newline-joined body (400 code 6 "Invalid data format" naming the event number: not
a JSON object, no `event`, a non-numeric `time`, an unknown key, a nested value in `fields`). It
keeps events deduplicated by `event.event_id` (counting duplicates), can be told to answer the
next requests with 429 (and Retry-After), 503 or any status, or to be down, and serves indexer
acknowledgements (`/services/collector/ack`) when `ack` is on. Run as a module, it serves in a
process of its own and reports what it received at `GET /_double/received` (event id -> the
monotonic time of receipt).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

import msgspec
import pytest

from tests.peers.http_double import Answer, Request, serve_double

_decode = msgspec.json.Decoder().decode
EVENT_KEYS = frozenset({"time", "host", "source", "sourcetype", "index", "event", "fields"})
TOKEN = "hec-token-0f9e8d7c"


@dataclass
class HecDouble:
    token: str = TOKEN
    ack: bool = False
    events: dict[str, dict[str, Any]] = field(default_factory=dict)  # by event.event_id
    order: list[str] = field(default_factory=list)
    received_at: dict[str, float] = field(default_factory=dict)  # event id -> time.monotonic()
    duplicates: int = 0
    requests: int = 0
    rejected: list[tuple[int, str]] = field(default_factory=list)  # (status, text)
    channels: set[str] = field(default_factory=set)
    failures: list[tuple[int, float | None]] = field(default_factory=list)
    down: bool = False
    acks_pending: dict[int, int] = field(default_factory=dict)  # ack id -> polls before true
    ack_polls_needed: int = 1
    lock: threading.Lock = field(default_factory=threading.Lock)
    _next_ack: int = 0
    url: str = ""

    def fail_next(self, count: int, status: int = 503, retry_after: float | None = None) -> None:
        self.failures.extend([(status, retry_after)] * count)

    def received_ids(self) -> list[str]:
        return list(self.order)

    # --- the wire contract -------------------------------------------------------------------

    def handle_event(  # noqa: PLR0911 - one answer per refusal, as Splunk gives them
        self, headers: Any, body: bytes
    ) -> tuple[int, dict[str, Any], dict[str, str]]:
        with self.lock:
            self.requests += 1
            auth = headers.get("Authorization")
            if self.down:
                return 503, {"text": "Server is busy", "code": 9}, {}
            if self.failures:
                status, retry_after = self.failures.pop(0)
                extra = {"Retry-After": f"{retry_after:g}"} if retry_after is not None else {}
                return status, {"text": "Server is busy", "code": 9}, extra
        if not auth:
            return 401, {"text": "Token is required", "code": 2}, {}
        if auth != f"Splunk {self.token}":
            return 403, {"text": "Invalid token", "code": 4}, {}
        channel = headers.get("X-Splunk-Request-Channel")
        if self.ack and not channel:
            return 400, {"text": "Data channel is missing", "code": 10}, {}
        parsed, problem = _events(body)
        if problem is not None:
            return 400, problem, {}
        now = time.monotonic()
        with self.lock:
            for event in parsed:
                event_id = str(event["event"].get("event_id", ""))
                if event_id in self.events:
                    self.duplicates += 1
                    continue
                self.events[event_id] = event
                self.order.append(event_id)
                self.received_at[event_id] = now
            if channel:
                self.channels.add(channel)
            answer: dict[str, Any] = {"text": "Success", "code": 0}
            if self.ack:
                self._next_ack += 1
                answer["ackId"] = self._next_ack
                self.acks_pending[self._next_ack] = self.ack_polls_needed
        return 200, answer, {}

    def handle_ack(self, headers: Any, query: str, body: bytes) -> tuple[int, dict[str, Any]]:
        if headers.get("Authorization") != f"Splunk {self.token}":
            return 403, {"text": "Invalid token", "code": 4}
        if not self.ack:
            return 400, {"text": "ACK is disabled", "code": 14}
        channel = parse_qs(query).get("channel", [""])[0]
        if not channel or channel not in self.channels:
            return 400, {"text": "Invalid data channel", "code": 11}
        try:
            wanted = json.loads(body)["acks"]
        except (ValueError, KeyError, TypeError):
            return 400, {"text": "Invalid data format", "code": 6}
        acks = {}
        with self.lock:
            for ack_id in wanted:
                left = self.acks_pending.get(ack_id)
                if left is not None and left > 1:
                    self.acks_pending[ack_id] = left - 1
                acks[str(ack_id)] = left is not None and left <= 1
        return 200, {"acks": acks}


def _events(body: bytes) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:  # noqa: PLR0911
    events = []
    lines = [line for line in body.split(b"\n") if line.strip()]
    if not lines:
        return [], {"text": "No data", "code": 5}
    for number, line in enumerate(lines):
        bad = {"text": "Invalid data format", "code": 6, "invalid-event-number": number}
        try:
            event = _decode(line)
        except msgspec.DecodeError:
            return [], bad
        if not isinstance(event, dict) or "event" not in event:
            return [], {
                "text": "Event field is required",
                "code": 12,
                "invalid-event-number": number,
            }
        if set(event) - EVENT_KEYS or event["event"] in ("", None):
            return [], bad
        if "time" in event and not isinstance(event["time"], int | float):
            return [], bad
        fields = event.get("fields", {})
        if not isinstance(fields, dict) or any(isinstance(v, dict) for v in fields.values()):
            return [], {
                "text": "Error in handling indexed fields",
                "code": 15,
                "invalid-event-number": number,
            }
        events.append(event)
    return events, None


def _route(double: HecDouble, request: Request) -> Answer:
    if request.path == "/_double/received":  # the double's own view, for a benchmark's process
        with double.lock:
            return Answer(200, dict(double.received_at))
    if request.path == "/services/collector/event":
        status, answer, extra = double.handle_event(request.headers, request.body)
    elif request.path == "/services/collector/ack":
        status, answer = double.handle_ack(request.headers, request.query, request.body)
        extra = {}
    else:
        status, answer, extra = 404, {"text": "The requested URL was not found", "code": 404}, {}
    if status >= 400:
        with double.lock:
            double.rejected.append((status, str(answer.get("text"))))
    return Answer(status, answer, extra)


def start_hec(**options: Any) -> tuple[HecDouble, Any]:
    double = HecDouble(**options)
    base, server = serve_double(lambda request: _route(double, request))
    double.url = f"{base}/services/collector/event"
    return double, server


@pytest.fixture
def hec() -> Iterator[HecDouble]:
    double, server = start_hec()
    try:
        yield double
    finally:
        server.shutdown()
        server.server_close()


def serve_forever() -> None:
    """`python -m tests.peers.splunk_hec`: the double in a process of its own (benchmarks keep
    its CPU out of theirs); prints its URL, serves until killed."""
    double, server = start_hec()
    print(double.url, flush=True)
    threading.Event().wait()
    server.shutdown()


if __name__ == "__main__":
    serve_forever()
