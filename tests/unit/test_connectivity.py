"""The TCP connectivity test of Kafka, SIEM and warehouse endpoints: the endpoint is read from a
URL, a host and port, or the first bootstrap server; a provider reached only through a cloud API
has nothing to test from here. Against a listening socket on 127.0.0.1 and a closed port."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from uuid import uuid4

import pytest

from domain.constitution import DEFAULT_CONSTITUTIONAL_HASH
from domain.integration.probe import ProbeFailure
from domain.integration.values import IntegrationType
from infra.connectivity import CHECKS, _endpoint, sink_check


@pytest.fixture
def listening() -> Iterator[int]:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        yield int(server.getsockname()[1])


@pytest.fixture
def closed() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_the_endpoint_of_a_url_a_host_or_a_bootstrap_server() -> None:
    assert _endpoint({"url": "https://siem.example/services"}, 9) == ("siem.example", 443)
    assert _endpoint({"url": "http://siem.example"}, 9) == ("siem.example", 80)
    assert _endpoint({"url": "http://siem.example:8088"}, 9) == ("siem.example", 8088)
    assert _endpoint({"host": "wh.example"}, 5439) == ("wh.example", 5439)
    assert _endpoint({"host": "wh.example", "port": 6000}, 5439) == ("wh.example", 6000)
    assert _endpoint({"bootstrap_servers": ["k1.example:9093", "k2:9093"]}, 9) == (
        "k1.example",
        9093,
    )
    assert _endpoint({"provider": "bigquery"}, 9) is None


def test_an_endpoint_is_reached_or_reported_unreachable(listening: int, closed: int) -> None:
    check = CHECKS[IntegrationType.SIEM]
    reached = check({"url": f"http://127.0.0.1:{listening}/hec"})
    assert (reached.connection_established, reached.failure) == (True, None)
    away = check({"host": "127.0.0.1", "port": closed, "timeout_seconds": 1})
    assert away.failure is ProbeFailure.UNREACHABLE
    assert away.message == f"cannot connect to 127.0.0.1:{closed} (ConnectionRefusedError)"


def test_a_cloud_only_warehouse_has_no_endpoint_to_test() -> None:
    result = CHECKS[IntegrationType.DATA_WAREHOUSE]({"provider": "snowflake", "account": "a"})
    assert result.connection_established is False
    assert result.failure is ProbeFailure.QUERY_FAILED
    assert result.message == "this provider has no endpoint to test from here"


def test_a_sink_without_an_adapter_is_tested_by_its_endpoint(listening: int) -> None:
    config = {"kind": "syslog-over-carrier-pigeon", "host": "127.0.0.1", "port": listening}
    result = sink_check(uuid4(), config, DEFAULT_CONSTITUTIONAL_HASH)
    assert (result.connection_established, result.failure) == (True, None)
