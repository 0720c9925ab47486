"""Elasticsearch `_bulk` against the strict double: the sink contract, per-item refusals of which
only the refused items are tried again (through the real runner), and the double's strictness."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any
from uuid import uuid4

import httpx
import pytest

from domain.sinks import Sink, SinkRecord
from infra.sinks.elasticsearch import ElasticsearchBulk
from projections.sinks.runner import SinkRunner, SinkSettings
from tests.integration.sinks.contract import RemoteSinkContract, records
from tests.peers.elasticsearch import PASSWORD, USER, ElasticsearchDouble, start_elasticsearch


class TestElasticsearch(RemoteSinkContract):
    @pytest.fixture(autouse=True)
    def receiver(self) -> Iterator[ElasticsearchDouble]:
        double, server = start_elasticsearch()
        self.double = double
        yield double
        server.shutdown()
        server.server_close()

    def open(self, **overrides: Any) -> Sink:
        config = {"kind": "elasticsearch", "url": self.double.url, "index": "acgs-audit"}
        config |= {"username": USER, "password": PASSWORD, "timeout_seconds": 2}
        return ElasticsearchBulk(config | overrides)

    def received(self) -> list[str]:
        return list(self.double.order)

    def received_bodies(self) -> list[dict[str, Any]]:
        return [self.double.documents[i] for i in self.double.order]

    def refuse_next(self, status: int, retry_after: float | None = None) -> None:
        self.double.fail_next(1, status, retry_after)

    def wrong_credentials(self) -> dict[str, Any]:
        return {"password": "not-the-password-3b3b"}

    def test_refused_items_are_reported_alone(self) -> None:
        batch = records(4)
        self.double.refuse_items = {batch[1].event_id: [429], batch[3].event_id: [400]}
        sink = self.open()
        try:
            delivery = sink.deliver(batch)
        finally:
            sink.close()
        assert set(delivery.failed) == {batch[1].event_id, batch[3].event_id}
        assert delivery.failed[batch[1].event_id].startswith("429 es_rejected_execution_exception")
        assert self.received() == [batch[0].event_id, batch[2].event_id]


class _Log:
    """Two log rows whose records are made by the test."""

    name = f"sink_{uuid4().hex}"

    def __init__(self, made: list[SinkRecord]) -> None:
        self.made = made
        self.pos = 0

    def position(self) -> int:
        return self.pos

    def advance(self, position: int) -> None:
        self.pos = position

    def read(self, after: int, limit: int | None = None) -> list[tuple[Any, ...]]:
        del limit
        return [
            (r.position, None, None, None, None, None, None)
            for r in self.made
            if r.position > after
        ]

    def follow(self, stop: threading.Event, catch_up: Any, *, poll_seconds: float = 1.0) -> None:
        del stop, poll_seconds
        catch_up()

    def close(self) -> None:
        pass


class _NoDeadLetters:
    def add(self, *args: Any) -> None:
        raise AssertionError(f"nothing should be dead-lettered: {args}")

    def close(self) -> None:
        pass


def test_the_runner_retries_only_the_refused_items(elasticsearch: ElasticsearchDouble) -> None:
    batch = records(6)
    elasticsearch.refuse_items = {batch[2].event_id: [429, 429], batch[4].event_id: [429]}
    by_position = {r.position: r for r in batch}
    config = {"url": elasticsearch.url, "username": USER, "password": PASSWORD}
    runner = SinkRunner(
        integration_id=uuid4(),
        owner=uuid4(),
        scope=None,
        source=_Log(batch),
        sink=ElasticsearchBulk(config),
        enrich=lambda rows: [by_position[r[0]] for r in rows],
        dead_letters=_NoDeadLetters(),
        settings=SinkSettings(max_wait=0, retry_initial=0.001, max_attempts=5),
    )
    runner.catch_up()
    runner.close()
    assert set(elasticsearch.order) == {r.event_id for r in batch}
    assert elasticsearch.writes == 6  # each record written once: only refused items came again


def test_the_double_refuses_what_elasticsearch_refuses(elasticsearch: ElasticsearchDouble) -> None:
    auth = httpx.BasicAuth(USER, PASSWORD)
    nd = {"Content-Type": "application/x-ndjson"}
    url = elasticsearch.url + "/_bulk"
    good = '{"index":{"_index":"a","_id":"1"}}\n{"x":1}\n'
    cases = [
        (None, nd, good, 401),
        (auth, {"Content-Type": "application/json"}, good, 406),
        (auth, nd, good.rstrip("\n"), 400),
        (auth, nd, '{"index":{"_index":"a"}}\n', 400),
        (auth, nd, '{"delete":{"_index":"a","_id":"1"}}\n{"x":1}\n', 400),
        (auth, nd, "{nope\n{}\n", 400),
    ]
    with httpx.Client() as client:
        for credentials, headers, body, status in cases:
            response = client.post(url, content=body, headers=headers, auth=credentials)
            assert response.status_code == status, body
        assert client.post(url, content=good, headers=nd, auth=auth).status_code == 200
    assert elasticsearch.order == ["1"]
