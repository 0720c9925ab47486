"""The JSON log line: its timestamp, written from a per-second cache, is the one
`datetime.isoformat` gives; extras keep the record's order; levels are lower case."""

from __future__ import annotations

import json
import logging
import random
from datetime import UTC, datetime

from api.logging import JsonFormatter


def _record(created: float, **extra: object) -> logging.LogRecord:
    record = logging.makeLogRecord({"msg": "m", "levelname": "WARNING", "name": "t", **extra})
    record.created = created
    return record


def test_the_timestamp_is_datetime_isoformat_to_the_millisecond() -> None:
    formatter = JsonFormatter()
    rng = random.Random(7)
    edges = [
        1_700_000_000 + f for f in (0.0, 0.0009994, 0.0009995, 0.9994999, 0.9999995, 0.9999999)
    ]
    moments = [*edges, *(rng.uniform(0, 4_102_444_800) for _ in range(20_000))]
    moments += [m + rng.random() / 1000 for m in moments[:2000]]  # several a second
    for created in moments:
        expected = datetime.fromtimestamp(created, UTC).isoformat(timespec="milliseconds")
        assert json.loads(formatter.format(_record(created)))["ts"] == expected, created


def test_a_line_keeps_its_order_and_its_extras() -> None:
    record = _record(1_700_000_000.25, request_id="r1", fields={"status": 200}, zeta=1, alpha=2)
    line = JsonFormatter().format(record)
    assert list(json.loads(line)) == [
        "ts",
        "level",
        "logger",
        "message",
        "request_id",
        "status",
        "zeta",
        "alpha",
    ]
    assert json.loads(line)["level"] == "warning"
    custom = logging.makeLogRecord({"msg": "m", "levelname": "NOTICE", "name": "t"})
    assert json.loads(JsonFormatter().format(custom))["level"] == "notice"
