"""A strict local double of Elasticsearch's `_bulk` API (no Elasticsearch runs here): basic
authentication (401 with Elasticsearch's security exception), `Content-Type:
application/x-ndjson`, a body of action/document pairs ending with a newline (400
`illegal_argument_exception` otherwise), `index`/`create` actions naming `_index`, documents that
are JSON objects. Documents are kept by `_id` (the event id), so a record sent twice is stored
once. It can refuse chosen documents one by one (an item with 429
`es_rejected_execution_exception` or 400 `mapper_parsing_exception`), or whole requests (429,
503), as a cluster under pressure does."""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from tests.peers.http_double import Answer, Request, serve_double

USER, PASSWORD = "acgs", "es-s3cret-7c1d"
_ITEM_ERRORS = {
    429: "es_rejected_execution_exception",
    400: "mapper_parsing_exception",
}


def _error(status: int, kind: str, reason: str) -> Answer:
    body = {"error": {"type": kind, "reason": reason}, "status": status}
    return Answer(status, body)


@dataclass
class ElasticsearchDouble:
    url: str = ""
    documents: dict[str, dict[str, Any]] = field(default_factory=dict)  # by _id
    order: list[str] = field(default_factory=list)
    writes: int = 0
    refuse_items: dict[str, list[int]] = field(default_factory=dict)  # _id -> statuses to answer
    failures: list[tuple[int, float | None]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def fail_next(self, count: int, status: int = 503, retry_after: float | None = None) -> None:
        self.failures.extend([(status, retry_after)] * count)

    def route(self, request: Request) -> Answer:  # noqa: PLR0911 - one answer per refusal
        if request.method != "POST" or not request.path.endswith("/_bulk"):
            return _error(405, "illegal_argument_exception", "only POST /_bulk here")
        expected = "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
        if request.headers.get("Authorization") != expected:
            return _error(401, "security_exception", "unable to authenticate user")
        with self.lock:
            if self.failures:
                status, retry_after = self.failures.pop(0)
                extra = {"Retry-After": f"{retry_after:g}"} if retry_after is not None else {}
                answer = _error(status, "es_rejected_execution_exception", "rejected")
                answer.headers = extra
                return answer
        if request.headers.get("Content-Type", "").split(";")[0] != "application/x-ndjson":
            return _error(406, "media_type_header_exception", "Content-Type must be x-ndjson")
        body = request.body.decode()
        if not body.endswith("\n"):
            return _error(400, "illegal_argument_exception", "must be terminated by a newline")
        lines = body[:-1].split("\n")
        if len(lines) % 2:
            return _error(400, "illegal_argument_exception", "action without a document")
        try:
            pairs = [
                (json.loads(a), json.loads(d)) for a, d in zip(lines[::2], lines[1::2], strict=True)
            ]
        except ValueError:
            return _error(400, "x_content_parse_exception", "not JSON")
        items = []
        for action, document in pairs:
            verb = next(iter(action), "")
            meta = action.get(verb) or {}
            if (
                verb not in ("index", "create")
                or "_index" not in meta
                or not isinstance(document, dict)
            ):
                return _error(400, "illegal_argument_exception", f"malformed action {action}")
            items.append(self._write(verb, meta, document))
        return Answer(
            200,
            {
                "took": 1,
                "errors": any("error" in next(iter(i.values())) for i in items),
                "items": items,
            },
        )

    def _write(self, verb: str, meta: dict[str, Any], document: dict[str, Any]) -> dict[str, Any]:
        doc_id = str(meta.get("_id", ""))
        with self.lock:
            planned = self.refuse_items.get(doc_id)
            if planned:
                status = planned.pop(0)
                error = {"type": _ITEM_ERRORS[status], "reason": "refused by the double"}
                return {
                    verb: {
                        "_index": meta["_index"],
                        "_id": doc_id,
                        "status": status,
                        "error": error,
                    }
                }
            self.writes += 1
            created = doc_id not in self.documents
            self.documents[doc_id] = document
            if created:
                self.order.append(doc_id)
        result = "created" if created else "updated"
        status = 201 if created else 200
        return {verb: {"_index": meta["_index"], "_id": doc_id, "status": status, "result": result}}


def start_elasticsearch() -> tuple[ElasticsearchDouble, Any]:
    double = ElasticsearchDouble()
    double.url, server = serve_double(double.route)
    return double, server


@pytest.fixture
def elasticsearch() -> Iterator[ElasticsearchDouble]:
    double, server = start_elasticsearch()
    try:
        yield double
    finally:
        server.shutdown()
        server.server_close()
