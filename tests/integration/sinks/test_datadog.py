"""Datadog Logs intake v2 against the strict double: the sink contract, gzip, tags and status,
and batches cut to 1,000 entries per request."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from domain.sinks import Sink
from infra.sinks.datadog import DatadogLogs
from tests.integration.sinks.contract import RemoteSinkContract, records
from tests.peers.datadog import API_KEY, DatadogDouble, start_datadog


class TestDatadog(RemoteSinkContract):
    @pytest.fixture(autouse=True)
    def receiver(self) -> Iterator[DatadogDouble]:
        double, server = start_datadog()
        self.double = double
        yield double
        server.shutdown()
        server.server_close()

    def open(self, **overrides: Any) -> Sink:
        config = {"kind": "datadog", "url": self.double.url, "api_key": API_KEY}
        return DatadogLogs(config | {"timeout_seconds": 2} | overrides)

    def received(self) -> list[str]:
        return list(self.double.order)

    def received_bodies(self) -> list[dict[str, Any]]:
        return [json.loads(self.double.entries[i]["message"]) for i in self.double.order]

    def refuse_next(self, status: int, retry_after: float | None = None) -> None:
        self.double.fail_next(1, status, retry_after)

    def wrong_credentials(self) -> dict[str, Any]:
        return {"api_key": "not-the-key-9d9d"}

    def test_entries_carry_tags_and_status(self) -> None:
        sink = self.open()
        try:
            sink.deliver(records(1, result="denied"))
        finally:
            sink.close()
        entry = next(iter(self.double.entries.values()))
        tags = dict(t.split(":", 1) for t in entry["ddtags"].split(","))
        assert tags["tenant"] == "acme"
        assert tags["constitutional_hash"] == "cdd01ef066bc6cf2"
        assert entry["status"] == "warn"
        assert entry["ddsource"] == "acgs"

    def test_a_large_batch_goes_in_requests_of_at_most_1000_entries(self) -> None:
        batch = records(2500)
        sink = self.open()
        try:
            sink.deliver(batch)
        finally:
            sink.close()
        assert self.double.request_sizes == [1000, 1000, 500]
        assert self.received() == [r.event_id for r in batch]


def test_the_double_refuses_what_datadog_refuses(datadog: DatadogDouble) -> None:
    key = {"DD-API-KEY": API_KEY, "Content-Type": "application/json"}
    good = json.dumps([{"message": "m", "event_id": "e1", "ddtags": "a:b"}])
    cases = [
        ({"Content-Type": "application/json"}, good, 403),
        (key | {"Content-Encoding": "gzip"}, good, 400),
        (key, "{}", 400),
        (key, json.dumps([{"msg": "no message"}]), 400),
        (key, json.dumps([{"message": "m", "ddtags": "novalue"}]), 400),
        (key, json.dumps([{"message": "m"}] * 1001), 413),
    ]
    with httpx.Client() as client:
        for headers, body, status in cases:
            response = client.post(datadog.url + "/api/v2/logs", content=body, headers=headers)
            assert response.status_code == status, body
        assert (
            client.post(datadog.url + "/api/v2/logs", content=good, headers=key).status_code == 202
        )
    assert datadog.order == ["e1"]
