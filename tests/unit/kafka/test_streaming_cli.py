"""`acgs streaming`: the AsyncAPI document written or printed, the JSON of what Avro decoding
yields, and the broker watch saying once that the broker is down and once that it is back."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

import pytest
from click.testing import CliRunner
from confluent_kafka import KafkaError

from api.cli.main import cli
from api.cli.streaming import BrokerWatch, json_value
from api.streaming.asyncapi import render


def test_asyncapi_writes_the_document_or_prints_it(tmp_path: Path) -> None:
    target = tmp_path / "asyncapi.json"
    written = CliRunner().invoke(cli, ["streaming", "asyncapi", "--output", str(target)])
    assert written.exit_code == 0, written.output
    assert written.output == f"wrote {target}\n"
    assert target.read_text() == render()
    printed = CliRunner().invoke(cli, ["streaming", "asyncapi", "--output", "-"])
    assert printed.exit_code == 0
    assert printed.output == render()


def test_instants_bytes_and_the_rest_become_json() -> None:
    naive = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC).replace(tzinfo=None)
    assert json_value(naive) == "2026-01-02T03:04:05Z"  # taken as UTC
    east = datetime(2026, 1, 2, 5, 4, 5, tzinfo=timezone(timedelta(hours=2)))
    assert json_value(east) == "2026-01-02T03:04:05Z"
    assert json_value(datetime(2026, 1, 2, tzinfo=UTC)) == "2026-01-02T00:00:00Z"
    assert json_value(b"caf\xc3\xa9 \xff") == "café \ufffd"
    assert json_value(Decimal("1.50")) == "1.50"


def test_the_watch_says_once_that_the_broker_is_down_and_once_that_it_is_back(
    capsys: pytest.CaptureFixture[str],
) -> None:
    watch = BrokerWatch("127.0.0.1:9")
    watch.reachable()  # never down: nothing to say
    watch.error(KafkaError(KafkaError._TRANSPORT, "connection refused"))
    watch.error(KafkaError(KafkaError._ALL_BROKERS_DOWN, "1/1 brokers are down"))
    watch.error(KafkaError(KafkaError.TOPIC_AUTHORIZATION_FAILED, "not allowed"))
    watch.reachable()
    watch.reachable()
    lines = capsys.readouterr().err.splitlines()
    assert lines == [
        "acgs: the Kafka broker at 127.0.0.1:9 cannot be reached (connection refused); "
        "retrying (every 10 s at most) until it is back",
        "acgs: Kafka: not allowed",
        "acgs: the Kafka broker at 127.0.0.1:9 is back",
    ]
