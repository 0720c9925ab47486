"""The one logging setup: JSON lines on stderr, each with the request id of its request, and
secrets redacted from the finished line (tokens, bearer credentials, passwords, private keys,
connection-string passwords), whatever logger, message, argument or traceback carried them."""

from __future__ import annotations

import logging
import re
import sys
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

import msgspec

from infra.tracing import log_ids

REDACTED = "***REDACTED***"
request_id_var: ContextVar[str | None] = ContextVar("acgs_request_id", default=None)

_SECRETS = [
    # JSON Web Tokens (three base64url parts, the first a JSON object: "eyJ")
    (re.compile(r"eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*"), REDACTED),
    (re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]+"), rf"\1 {REDACTED}"),
    (
        re.compile(
            r"(?i)((?:password|passwd|secret|api[_-]?key|token|authorization)"
            r"(?:\\?[\"'])?\s*[:=]\s*(?:\\?[\"'])?)[^\s\"'\\,;&}]+"
        ),
        rf"\1{REDACTED}",
    ),
    (re.compile(r"(?i)(\b[a-z][a-z0-9+.-]*://[^:/@\s]+:)[^@\s]+@"), rf"\1{REDACTED}@"),
    (
        re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----.*?-----END [A-Z ]*PRIVATE KEY-----", re.S),
        REDACTED,
    ),
]
_STANDARD = frozenset(vars(logging.makeLogRecord({})).keys()) | {"message", "asctime"}
_NOT_EXTRA = _STANDARD | {"fields", "request_id"}  # attributes that are not a record's extras
_LEVELS = {name: name.lower() for name in logging.getLevelNamesMapping()}
_encode = msgspec.json.Encoder(enc_hook=str).encode


# One cheap pass decides whether a line needs the patterns at all (most lines do not).
_MARKERS = ("eyj", "bearer", "basic", "passw", "secret", "key", "token", "authoriz", "://")


def redact(text: str) -> str:
    lowered = text.lower()
    for marker in _MARKERS:
        if marker in lowered:
            break
    else:
        return text
    for pattern, replacement in _SECRETS:
        text = pattern.sub(replacement, text)
    return text


class JsonFormatter(logging.Formatter):
    """One JSON object a line: `ts`, `level`, `logger`, `message`, the request id, the trace and
    span ids, the record's `fields`, its other extras, and the exception, in that order. Every
    request writes one (the access log), so the timestamp's date and time up to the second is
    formatted once per second."""

    def __init__(self) -> None:
        super().__init__()
        self._second = -1
        self._second_text = ""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": self._timestamp(record.created),
            "level": _LEVELS.get(record.levelname) or record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        request_id = getattr(record, "request_id", None) or request_id_var.get()
        if request_id is not None:
            entry["request_id"] = request_id
        ids = log_ids()
        if ids is not None:
            entry["trace_id"], entry["span_id"] = ids
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            entry.update(fields)
        attributes = vars(record)
        if not _NOT_EXTRA.issuperset(attributes):  # extras are rare: in the record's order
            for key in [k for k in attributes if k not in _NOT_EXTRA]:
                entry[key] = attributes[key]
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return redact(_encode(entry).decode())

    def _timestamp(self, created: float) -> str:
        """`created` in UTC to the millisecond, as `datetime.isoformat` writes it (rounded to
        the microsecond, then cut to the millisecond)."""
        second = int(created)
        micros = round((created - second) * 1_000_000)
        if micros >= 1_000_000:
            second, micros = second + 1, micros - 1_000_000
        if second != self._second:
            self._second_text = datetime.fromtimestamp(second, UTC).isoformat()[:19]
            self._second = second
        return f"{self._second_text}.{micros // 1000:03d}+00:00"


def configure_logging(level: str = "INFO") -> None:
    """Install the JSON handler on the root logger (once per process)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    for existing in list(root.handlers):
        root.removeHandler(existing)
    root.addHandler(handler)
    root.setLevel(level)
    for noisy in ("uvicorn.access",):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    # A line carries none of the caller's file, line, function, thread or process (see
    # JsonFormatter): the logging module's documented switches spare every record finding them
    # (every request writes an access-log line).
    logging._srcfile = None  # the documented switch ("Optimization" in the logging HOWTO)
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
