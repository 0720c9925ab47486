"""`acgs serve --kafka-local`'s broker and registry: both start on 127.0.0.1, their addresses go
to the address file, and the next start takes the same ports when they are free (a new one when
taken); an address file that is missing or not ours reads as none."""

from __future__ import annotations

import socket
from pathlib import Path

import httpx
import pytest

from infra.kafka.local_broker import LocalAddresses, LocalStreaming, port_is_free

pytestmark = pytest.mark.kafka


def test_the_next_start_keeps_the_ports_and_the_address_file_names_them(tmp_path: Path) -> None:
    address_file = tmp_path / "kafka-local.json"
    streaming = LocalStreaming(address_file)
    bootstrap, registry = streaming.start()
    try:
        assert LocalAddresses.read(address_file) == LocalAddresses(bootstrap, registry)
        assert httpx.get(f"{registry}/subjects").json() == []
        assert not port_is_free(int(bootstrap.rsplit(":", 1)[1]))
    finally:
        streaming.stop()
    assert (streaming.broker, streaming.registry) == (None, None)
    again = LocalStreaming(address_file)
    assert again.start() == (bootstrap, registry)
    again.stop()
    registry_port = LocalAddresses(bootstrap, registry).ports()[1]
    assert registry_port is not None
    with socket.create_server(("127.0.0.1", registry_port)):  # taken by someone else now
        moved = LocalStreaming(address_file)
        try:
            assert moved.start()[0] == bootstrap
            assert moved.registry is not None
            assert moved.registry.url != registry
        finally:
            moved.stop()


def test_an_address_file_missing_or_not_ours_reads_as_none(tmp_path: Path) -> None:
    assert LocalAddresses.read(tmp_path / "missing.json") is None
    (tmp_path / "other.json").write_text('{"bootstrap_servers": "h:1"}')
    assert LocalAddresses.read(tmp_path / "other.json") is None
    assert LocalAddresses("broker", "http://registry/").ports() == (None, None)
