"""The HTTP server under the strict doubles of vendors' wire APIs (Splunk HEC, Elasticsearch,
Datadog, Azure Monitor): a threading server on a free 127.0.0.1 port that hands each request to
the double's `route` and writes its answer. Doubles check the contract; this only carries it."""

from __future__ import annotations

import gzip
import json
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    query: str
    headers: Mapping[str, str]
    body: bytes  # as sent (still compressed when Content-Encoding says so)

    def decoded(self) -> bytes:
        """The body, gunzipped when it says so (ValueError for a body that is not gzip)."""
        if self.headers.get("Content-Encoding") == "gzip":
            try:
                return gzip.decompress(self.body)
            except (OSError, EOFError) as exc:
                raise ValueError("not gzip") from exc
        return self.body


@dataclass
class Answer:
    status: int
    body: Any = None  # JSON-encoded unless bytes
    headers: dict[str, str] = field(default_factory=dict)


Route = Callable[[Request], Answer]


def _handler(route: Route) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            del format, args

        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            url = urlsplit(self.path)
            request = Request(
                self.command, url.path, url.query, self.headers, self.rfile.read(length)
            )
            answer = route(request)
            if isinstance(answer.body, bytes):
                data = answer.body
            elif answer.body is None:
                data = b""
            else:
                data = json.dumps(answer.body).encode()
            self.send_response(answer.status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for key, value in answer.headers.items():
                self.send_header(key, value)
            self.end_headers()
            self.wfile.write(data)

        do_POST = do_GET = do_PUT = do_PATCH = _serve  # noqa: N815

    return Handler


def serve_double(route: Route) -> tuple[str, ThreadingHTTPServer]:
    """Serve `route` on 127.0.0.1; returns the base URL and the server (shut it down after)."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(route))
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, name="http-double", daemon=True).start()
    return f"http://127.0.0.1:{server.server_address[1]}", server
