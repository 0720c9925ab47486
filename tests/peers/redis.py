"""A real Redis server (Debian's redis-server) for the test session: in the foreground on a free
127.0.0.1 port, persisting nothing, in a scratch directory; stopped by its PID. `Redis.stop` and
`Redis.start` take it down and bring it back on the same port, for the tests of what the service
does while Redis is away. A missing redis-server fails naming the install step, never a skip."""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.peers.http import free_port
from tests.peers.scratch import scratch_dir

INSTALL = (
    "redis-server is not installed: run `make system-deps` as root "
    "(apt-get install -y --no-install-recommends redis-server)"
)


@dataclass
class Redis:
    port: int
    work: Path
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            pytest.fail(INSTALL)
        log = self.work / "redis.log"
        self.process = subprocess.Popen(
            [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", str(self.work), "--logfile", str(log)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.STDOUT,
        )  # fmt: skip
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                pytest.fail(f"redis-server exited with {self.process.returncode}: {_tail(log)}")
            if _pong(self.port):
                return
            time.sleep(0.05)
        self.stop()
        pytest.fail(f"redis-server did not answer PING within 20 s: {_tail(log)}")

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)


@contextmanager
def running_redis() -> Iterator[Redis]:
    with scratch_dir("acgs-redis-") as work:
        server = Redis(free_port(), work)
        server.start()
        try:
            yield server
        finally:
            server.stop()


@pytest.fixture(scope="session")
def redis_server() -> Iterator[Redis]:
    with running_redis() as server:
        yield server


def _pong(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")
    except OSError:
        return False


def _tail(log: Path) -> str:
    try:
        return log.read_text()[-2000:]
    except FileNotFoundError:
        return "(no log)"
