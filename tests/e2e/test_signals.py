"""Stopping `acgs serve` as process managers do (SIGTERM) and as a user does (Ctrl-C, SIGINT):
the request in flight is answered, then everything the process started is stopped (the embedded
PostgreSQL included) and it exits 0, leaving no process behind. A port in use is named, and
nothing claims to listen."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time

import pytest

from domain.constitution import DEFAULT_CONSTITUTIONAL_HASH
from tests.peers.scratch import scratch_dir
from tests.peers.serve import ACGS, ServeProcess, acgs_env, alive, processes_mentioning

pytestmark = [pytest.mark.e2e, pytest.mark.postgres, pytest.mark.slow]

BOUND_SECONDS = 30  # the drain (10 s at most) plus stopping runners and the database, with margin


def _read_response(conn: socket.socket) -> bytes:
    chunks = []
    while chunk := conn.recv(65536):
        chunks.append(chunk)
    return b"".join(chunks)


def _post_tenant_request(token: str, slug: str) -> tuple[bytes, bytes]:
    body = json.dumps(
        {
            "tenant_name": "Drained Inc",
            "tenant_slug": slug,
            "admin_email": "admin@drained.example.com",
            "constitutional_hash": DEFAULT_CONSTITUTIONAL_HASH,
        }
    ).encode()
    head = (
        "POST /v1/tenants HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        f"Authorization: Bearer {token}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n"
    ).encode()
    return head, body


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_stop_signal_drains_the_request_in_flight_stops_everything_and_exits_0(
    sig: signal.Signals,
) -> None:
    with scratch_dir("acgs-signal-") as data_dir:
        served = ServeProcess(data_dir).start()
        assert served.process is not None
        postmaster = None
        try:
            served.wait_ready()
            postmaster = served.postmaster_pid()
            assert alive(postmaster)
            slug = f"drained-{sig.name.lower()}"
            head, body = _post_tenant_request(served.bootstrap_token(), slug)
            with socket.create_connection(("127.0.0.1", served.port), timeout=60) as conn:
                conn.sendall(head)
                # "100 Continue" comes when the handler asks for the body: the request is in flight
                interim = b""
                while not interim.endswith(b"\r\n\r\n"):
                    interim += conn.recv(1)
                assert interim.startswith(b"HTTP/1.1 100"), interim
                signalled = time.monotonic()
                served.process.send_signal(sig)
                time.sleep(1.5)
                assert served.process.poll() is None, "it must wait for the request in flight"
                conn.sendall(body)
                response = _read_response(conn)
            assert response.startswith(b"HTTP/1.1 201"), response[:300]
            code = served.stop(sig, timeout=BOUND_SECONDS + 30)
            elapsed = time.monotonic() - signalled
            assert code == 0, served.lines
            assert elapsed < BOUND_SECONDS, f"took {elapsed:.1f} s to stop"
            assert served.lines[-1] == "acgs: stopped"
            assert not alive(postmaster), "the embedded PostgreSQL is still running"
            assert processes_mentioning(str(data_dir)) == []
            with pytest.raises(ConnectionRefusedError):
                socket.create_connection(("127.0.0.1", served.port), timeout=2).close()
        finally:
            if served.process.poll() is None:
                served.stop(signal.SIGKILL)
            if postmaster is not None and alive(postmaster):  # left behind: stop it by its PID
                os.kill(postmaster, signal.SIGTERM)
                deadline = time.monotonic() + 30
                while alive(postmaster) and time.monotonic() < deadline:
                    time.sleep(0.1)


def test_a_taken_port_is_named_before_anything_starts_and_nothing_claims_to_listen() -> None:
    with (
        scratch_dir("acgs-port-") as data_dir,
        socket.socket(socket.AF_INET, socket.SOCK_STREAM) as taken,
    ):
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run(
            [*ACGS, "serve"],
            env=acgs_env(data_dir, port),
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert result.returncode == 1, result
        assert "listening" not in result.stdout
        assert f"port {port} on 127.0.0.1 is already in use" in result.stderr
        assert "Traceback" not in result.stderr
        assert not (data_dir / "pg").exists(), "no database is started for a server that cannot"


@pytest.mark.kafka
def test_sigterm_with_the_local_broker_leaves_no_process_behind() -> None:
    from confluent_kafka import Consumer  # noqa: PLC0415 - the streaming extra

    with scratch_dir("acgs-signal-kafka-") as data_dir:
        served = ServeProcess(data_dir, args=("--kafka-local",)).start()
        assert served.process is not None
        leftovers: list[int] = []
        try:
            served.wait_ready()
            postmaster = served.postmaster_pid()
            bootstrap = json.loads((data_dir / "kafka-local.json").read_text())["bootstrap_servers"]
            broker = processes_mentioning(f"tcp://{bootstrap}")
            assert len(broker) == 1
            leftovers = [postmaster, *broker]
            reader = Consumer({"bootstrap.servers": bootstrap, "group.id": "x", "log_level": 0})
            try:
                reader.list_topics(timeout=10)  # a client stays connected while it stops
                signalled = time.monotonic()
                code = served.stop(signal.SIGTERM, timeout=BOUND_SECONDS + 30)
                elapsed = time.monotonic() - signalled
            finally:
                reader.close()
            assert code == 0, served.lines
            assert elapsed < BOUND_SECONDS, f"took {elapsed:.1f} s to stop"
            assert [pid for pid in leftovers if alive(pid)] == []
            assert processes_mentioning(str(data_dir)) == []
        finally:
            if served.process.poll() is None:
                served.stop(signal.SIGKILL)
            for pid in leftovers:
                if alive(pid):
                    os.kill(pid, signal.SIGKILL if pid != leftovers[0] else signal.SIGTERM)
