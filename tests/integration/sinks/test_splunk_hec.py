"""Splunk HEC against the strict HEC double: the sink contract, with and without indexer
acknowledgement, and the double's own strictness (it must refuse what Splunk refuses)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from domain.sinks import Sink
from infra.sinks.splunk_hec import SplunkHec
from tests.integration.sinks.contract import RemoteSinkContract, records
from tests.peers.splunk_hec import HecDouble, start_hec


class TestSplunkHec(RemoteSinkContract):
    ack = False

    @pytest.fixture(autouse=True)
    def receiver(self) -> Iterator[HecDouble]:
        double, server = start_hec(ack=self.ack)
        self.double = double
        yield double
        server.shutdown()
        server.server_close()

    def open(self, **overrides: Any) -> Sink:
        config = {"kind": "splunk_hec", "url": self.double.url, "token": self.double.token}
        config |= {"indexer_ack": self.ack, "timeout_seconds": 2, "index": "acgs"}
        return SplunkHec(config | overrides)

    def received(self) -> list[str]:
        return self.double.received_ids()

    def received_bodies(self) -> list[dict[str, Any]]:
        return [self.double.events[i]["event"] for i in self.double.order]

    def refuse_next(self, status: int, retry_after: float | None = None) -> None:
        self.double.fail_next(1, status, retry_after)

    def wrong_credentials(self) -> dict[str, Any]:
        return {"token": "not-the-token-5a5a"}

    def test_events_carry_splunk_metadata_and_indexed_fields(self) -> None:
        sink = self.open()
        try:
            sink.deliver(records(1, result="denied"))
        finally:
            sink.close()
        event = next(iter(self.double.events.values()))
        assert event["sourcetype"] == "acgs:audit"
        assert event["index"] == "acgs"
        assert isinstance(event["time"], float)
        assert event["fields"]["tenant_slug"] == "acme"
        assert event["fields"]["severity"] == "medium"


class TestSplunkHecWithIndexerAck(TestSplunkHec):
    ack = True

    def test_a_batch_counts_only_once_the_indexer_acknowledged_it(self) -> None:
        self.double.ack_polls_needed = 3
        sink = self.open()
        try:
            sink.deliver(records(2))
        finally:
            sink.close()
        assert self.double.acks_pending == {1: 1}  # polled until it answered true
        assert len(self.double.channels) == 1


def test_the_double_refuses_what_splunk_refuses(hec: HecDouble) -> None:
    auth = {"Authorization": f"Splunk {hec.token}"}
    good = json.dumps({"time": 1.5, "event": {"event_id": "a"}})
    cases: list[tuple[dict[str, str], str, int, int]] = [
        ({}, good, 401, 2),
        ({"Authorization": "Splunk wrong"}, good, 403, 4),
        (auth, "not json", 400, 6),
        (auth, json.dumps({"time": 1}), 400, 12),
        (auth, json.dumps({"event": {"event_id": "b"}, "time": "noon"}), 400, 6),
        (auth, json.dumps({"event": {"event_id": "c"}, "colour": "red"}), 400, 6),
        (auth, json.dumps({"event": {"event_id": "d"}, "fields": {"x": {"y": 1}}}), 400, 15),
        (auth, "", 400, 5),
    ]
    with httpx.Client() as client:
        for headers, body, status, code in cases:
            response = client.post(hec.url, content=body, headers=headers)
            assert (response.status_code, response.json()["code"]) == (status, code), body
        assert client.post(hec.url, content=good, headers=auth).status_code == 200
    assert hec.received_ids() == ["a"]
