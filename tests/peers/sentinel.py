"""A strict local double of Microsoft Entra ID's token endpoint and the Azure Monitor Logs
Ingestion API (no Azure here), on one 127.0.0.1 server.

Entra: `POST /<directory id>/oauth2/v2.0/token` with a form of `grant_type=client_credentials`,
the client id and secret, and `scope=https://monitor.azure.com//.default` (AADSTS errors with
400/401 otherwise); it issues opaque tokens living `token_lifetime` seconds and counts them.
Ingestion: `POST /dataCollectionRules/<dcr>/streams/<stream>?api-version=2023-01-01` with a valid,
unexpired bearer token (401 otherwise), `Content-Type: application/json`, an optional gzip
encoding, a body of at most 1 MB that is a JSON array of rows each with `TimeGenerated` (400
otherwise; 404 for an unknown DCR or stream; 413 above 1 MB). Answers 204. Rows are kept
deduplicated by `EventId`; it can answer 429 (Retry-After) or 503 on demand."""

from __future__ import annotations

import json
import secrets
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

import pytest

from tests.peers.http_double import Answer, Request, serve_double

DIRECTORY = "72f988bf-86f1-41af-91ab-2d7cd011db47"
CLIENT_ID = "00000000-0000-0000-0000-00000000acg5"
CLIENT_SECRET = "entra-s3cret-4e4e"
DCR = "dcr-0123456789abcdef0123456789abcdef"
STREAM = "Custom-ACGS_CL"
SCOPE = "https://monitor.azure.com//.default"


def _aad(status: int, code: str, description: str) -> Answer:
    return Answer(status, {"error": code, "error_description": description})


def _monitor(status: int, code: str, message: str) -> Answer:
    return Answer(status, {"error": {"code": code, "message": message}})


@dataclass
class SentinelDouble:
    url: str = ""
    token_lifetime: float = 3600.0
    tokens: dict[str, float] = field(default_factory=dict)  # token -> expires at (monotonic)
    tokens_issued: int = 0
    rows: dict[str, dict[str, Any]] = field(default_factory=dict)
    order: list[str] = field(default_factory=list)
    failures: list[tuple[int, float | None]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def authority(self) -> str:
        return self.url

    def fail_next(self, count: int, status: int = 503, retry_after: float | None = None) -> None:
        self.failures.extend([(status, retry_after)] * count)

    def expire_tokens(self) -> None:
        with self.lock:
            self.tokens = dict.fromkeys(self.tokens, 0.0)

    def route(self, request: Request) -> Answer:
        if request.path == f"/{DIRECTORY}/oauth2/v2.0/token":
            return self._token(request)
        if request.path.startswith("/dataCollectionRules/"):
            return self._ingest(request)
        return _monitor(404, "NotFound", "no such endpoint")

    def _token(self, request: Request) -> Answer:  # noqa: PLR0911 - one per AADSTS refusal
        if request.method != "POST":
            return _aad(405, "invalid_request", "AADSTS900561: POST required")
        if request.headers.get("Content-Type") != "application/x-www-form-urlencoded":
            return _aad(400, "invalid_request", "AADSTS900144: form body required")
        form = {k: v[0] for k, v in parse_qs(request.body.decode()).items()}
        if form.get("grant_type") != "client_credentials":
            return _aad(400, "unsupported_grant_type", "AADSTS70003")
        if form.get("scope") != SCOPE:
            return _aad(400, "invalid_scope", "AADSTS70011: the scope is not valid")
        if form.get("client_id") != CLIENT_ID:
            return _aad(400, "unauthorized_client", "AADSTS700016: application not found")
        if form.get("client_secret") != CLIENT_SECRET:
            return _aad(401, "invalid_client", "AADSTS7000215: invalid client secret")
        token = secrets.token_urlsafe(24)
        with self.lock:
            self.tokens[token] = time.monotonic() + self.token_lifetime
            self.tokens_issued += 1
        body = {
            "token_type": "Bearer",
            "expires_in": int(self.token_lifetime),
            "access_token": token,
        }
        return Answer(200, body)

    def _ingest(self, request: Request) -> Answer:  # noqa: PLR0911 - one answer per refusal
        auth = request.headers.get("Authorization", "")
        with self.lock:
            expires = self.tokens.get(auth.removeprefix("Bearer "), 0.0)
        if not auth.startswith("Bearer ") or expires < time.monotonic():
            return _monitor(401, "InvalidToken", "the token is missing, invalid or expired")
        if request.path != f"/dataCollectionRules/{DCR}/streams/{STREAM}":
            return _monitor(404, "NotFound", "unknown data collection rule or stream")
        if parse_qs(request.query).get("api-version") != ["2023-01-01"]:
            return _monitor(400, "InvalidApiVersion", "api-version 2023-01-01 expected")
        with self.lock:
            if self.failures:
                status, retry_after = self.failures.pop(0)
                answer = _monitor(status, "TooManyRequests" if status == 429 else "Unavailable", "")
                if retry_after is not None:
                    answer.headers = {"Retry-After": f"{retry_after:g}"}
                return answer
        if request.headers.get("Content-Type") != "application/json":
            return _monitor(415, "UnsupportedMediaType", "application/json expected")
        if len(request.body) > 1024 * 1024:
            return _monitor(413, "ContentLengthLimitExceeded", "at most 1 MB per call")
        try:
            rows = json.loads(request.decoded())
        except ValueError:
            return _monitor(400, "InvalidContent", "not JSON (or not gzip as announced)")
        if not isinstance(rows, list) or not all(
            isinstance(r, dict) and isinstance(r.get("TimeGenerated"), str) for r in rows
        ):
            return _monitor(400, "InvalidContent", "an array of rows with TimeGenerated expected")
        with self.lock:
            for row in rows:
                key = str(row.get("EventId"))
                if key not in self.rows:
                    self.rows[key] = row
                    self.order.append(key)
        return Answer(204)


def start_sentinel() -> tuple[SentinelDouble, Any]:
    double = SentinelDouble()
    double.url, server = serve_double(double.route)
    return double, server


@pytest.fixture
def sentinel() -> Iterator[SentinelDouble]:
    double, server = start_sentinel()
    try:
        yield double
    finally:
        server.shutdown()
        server.server_close()
