"""An independent webhook receiver for the tests: a tiny HTTP server on 127.0.0.1 that verifies
every delivery's `X-ACGS-Signature` with the standard library only (`hmac`, `hashlib`), as a
tenant's receiver would, without any of the project's code. It can be told to answer with
another status (e.g. 503), to fail the first N requests, or to redirect elsewhere."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

TOLERANCE_SECONDS = 300


def verify(secret: str, header: str, body: bytes, now: float | None = None) -> bool:
    """True when `header` (t=<unix>,v1=<hex>) signs `body` under `secret`, recently."""
    parts = dict(p.split("=", 1) for p in header.split(",") if "=" in p)
    try:
        stamp = int(parts["t"])
    except (KeyError, ValueError):
        return False
    if abs((time.time() if now is None else now) - stamp) > TOLERANCE_SECONDS:
        return False
    expected = hmac.new(secret.encode(), f"{stamp}.".encode() + body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, parts.get("v1", ""))


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    verified: bool

    @property
    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Receiver:
    """The server's state; `secret` is set by the test once the webhook is registered."""

    secret: str = ""
    status: int = 200
    fail_first: int = 0  # answer 503 to this many requests first
    redirect_to: str | None = None
    received: list[Received] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    url: str = ""
    _server: ThreadingHTTPServer | None = None

    def start(self) -> Receiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # else each answer waits for a delayed ACK (40 ms)

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                signature = self.headers.get("X-ACGS-Signature", "")
                with receiver.lock:
                    receiver.received.append(
                        Received(
                            self.path,
                            {k.lower(): v for k, v in self.headers.items()},
                            body,
                            verify(receiver.secret, signature, body),
                        )
                    )
                    failing = receiver.fail_first > 0
                    receiver.fail_first -= 1 if failing else 0
                status = 503 if failing else receiver.status
                if receiver.redirect_to is not None:
                    status = 302
                self.send_response(status)
                if status == 302 and receiver.redirect_to is not None:
                    self.send_header("Location", receiver.redirect_to)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, format: str, *args: Any) -> None:
                del format, args

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/hooks/acgs"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def bodies(self) -> list[dict[str, Any]]:
        with self.lock:
            return [r.json for r in self.received]


def main() -> None:
    """Serve in a process of its own (the benchmark's receiver): prints its URL, then answers
    `GET /_received` with how many deliveries arrived and how many verified."""
    import sys  # noqa: PLC0415

    receiver = Receiver(secret=sys.argv[1]).start()
    assert receiver._server is not None
    handler = receiver._server.RequestHandlerClass

    def do_get(self: BaseHTTPRequestHandler) -> None:
        with receiver.lock:
            counts = {
                "received": len(receiver.received),
                "verified": sum(r.verified for r in receiver.received),
            }
        body = json.dumps(counts).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    handler.do_GET = do_get  # type: ignore[attr-defined]
    print(receiver.url, flush=True)
    threading.Event().wait()


if __name__ == "__main__":
    main()
