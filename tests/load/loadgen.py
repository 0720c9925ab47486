"""A small HTTP/1.1 keep-alive load generator (wrk is not installed on these machines).

Run in its own process, pinned apart from the server: N connections each send GET requests
(or, with `--body`, POST requests with that JSON body) back to back for a duration and time
every response. Prints one JSON line:
{"requests", "errors", "seconds", "rps", "p50_ms", "p99_ms", "statuses", "answered"} (`answered`
counts the warm-up's responses too: the server's work over the whole run).

    python -m tests.load.loadgen http://127.0.0.1:8000/path --connections 8 --duration 5 \
        --header "Authorization: Bearer ..."

With `--rate R` the connections send R requests per second in all, each at its own fixed pace,
instead of back to back: a request's latency is then counted from when it was due, not from when
it was sent, so a slow response that delays the next request counts against that one too (no
coordinated omission). A rate the server cannot keep up with shows as latency growing.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from collections import Counter
from pathlib import Path
from urllib.parse import urlsplit

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tests.load.stats import percentile


async def _connection(
    host: str,
    port: int,
    request: bytes,
    stop_at: float,
    warm_until: float,
    latencies: list[float],
    statuses: Counter[int],
    answered: list[int],
    pace: tuple[float, float] | None = None,
) -> None:
    """`pace`: (the first request's due time, seconds between requests), or None: back to back."""
    reader, writer = await asyncio.open_connection(host, port)
    due, interval = pace if pace is not None else (0.0, 0.0)
    try:
        while True:
            started = time.perf_counter()
            if pace is not None:
                if due > started:
                    await asyncio.sleep(due - started)
                started, due = due, due + interval
            if started >= stop_at:
                return
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            status = int(head[9:12])
            length = 0
            for line in head.split(b"\r\n"):
                if line[:15].lower() == b"content-length:":
                    length = int(line[15:])
            if length:
                await reader.readexactly(length)
            answered[0] += 1
            if started >= warm_until:
                latencies.append(time.perf_counter() - started)
                statuses[status] += 1
    finally:
        writer.close()


async def run(
    url: str,
    connections: int,
    duration: float,
    warmup: float,
    headers: list[str],
    body: str | None = None,
    rate: float | None = None,
) -> dict[str, object]:
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    path = parts.path + (f"?{parts.query}" if parts.query else "")
    method = "GET" if body is None else "POST"
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host}:{port}", *headers]
    if body is not None:
        payload = body.encode()
        lines += ["Content-Type: application/json", f"Content-Length: {len(payload)}"]
    request = "\r\n".join([*lines, "", ""]).encode() + (b"" if body is None else payload)
    latencies: list[float] = []
    statuses: Counter[int] = Counter()
    answered = [0]  # every response, the warm-up's too
    begin = time.perf_counter()
    warm_until, stop_at = begin + warmup, begin + warmup + duration
    interval = connections / rate if rate else 0.0
    await asyncio.gather(
        *(
            _connection(
                host,
                port,
                request,
                stop_at,
                warm_until,
                latencies,
                statuses,
                answered,
                (begin + i * interval / connections, interval) if rate else None,
            )
            for i in range(connections)
        )
    )
    ms = [s * 1000 for s in latencies]
    ok = sum(n for s, n in statuses.items() if 200 <= s < 300)
    return {
        "requests": len(latencies),
        "errors": len(latencies) - ok,
        "seconds": duration,
        "rps": round(ok / duration, 1),
        "p50_ms": round(percentile(ms, 50), 3),
        "p99_ms": round(percentile(ms, 99), 3),
        "statuses": dict(statuses),
        "answered": answered[0],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("url")
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--duration", type=float, default=5.0)
    parser.add_argument("--warmup", type=float, default=1.0)
    parser.add_argument("--header", action="append", default=[])
    parser.add_argument("--body", default=None, help="POST this JSON body (default: GET)")
    parser.add_argument(
        "--rate", type=float, default=None, help="requests per second in all (default: flat out)"
    )
    args = parser.parse_args()
    try:
        import uvloop  # noqa: PLC0415

        runner = uvloop.run
    except ImportError:  # pragma: no cover - uvloop comes with uvicorn[standard]
        runner = asyncio.run
    result = runner(
        run(
            args.url,
            args.connections,
            args.duration,
            args.warmup,
            args.header,
            args.body,
            args.rate,
        )
    )
    print(json.dumps(result))


if __name__ == "__main__":
    main()
