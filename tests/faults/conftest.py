"""What the fault cases share: `acgs serve` / `acgs worker` subprocesses with settings of their
own, a PostgreSQL the test may stop and start again on the same port, the envelope check for a
503, and the figures each case reports (printed in the terminal summary, whatever `-s` says, and
recorded as junit properties)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from infra.postgres.embedded import EmbeddedPostgres, debian_bin_dir
from infra.postgres.migrate import migrate
from tests.conftest import FIGURES_PROPERTY
from tests.peers.http import wait_for
from tests.peers.scratch import scratch_dir
from tests.peers.serve import ACGS, ServeProcess, acgs_env, alive, processes_mentioning

# The bound on any one request while a peer is away: an answer (a 503) must come within it.
ANSWER_BOUND_SECONDS = 10.0


@pytest.fixture
def figures(request: pytest.FixtureRequest, record_property: Any) -> Any:
    """`figures(name=value, ...)`: one line of this case's figures, in the terminal summary."""

    def report(**values: object) -> None:
        line = ", ".join(f"{k}={v}" for k, v in values.items())
        record_property(FIGURES_PROPERTY, line)  # the terminal summary's line (tests/conftest.py)
        for key, value in values.items():
            record_property(key, value)
        print(f"{request.node.name}: {line}")

    return report


def assert_envelope(response: httpx.Response, code: str) -> dict[str, Any]:
    """A 503 with the one error envelope carrying `code`."""
    assert response.status_code == 503, (response.status_code, response.text)
    body = response.json()
    assert set(body) == {"error"}, body
    assert set(body["error"]) == {"code", "message", "details", "constitutional_hash"}, body
    assert body["error"]["code"] == code, body
    return dict(body["error"])


@dataclass
class FaultServe(ServeProcess):
    """`acgs serve` with extra settings (a database, a broker, a key provider ...)."""

    extra: dict[str, str] = field(default_factory=dict)

    @property
    def env(self) -> dict[str, str]:
        return acgs_env(self.data_dir, self.port, **self.extra)

    @property
    def log(self) -> Path:
        return self.data_dir.parent / f"{self.data_dir.name}.stderr"

    def start(self) -> FaultServe:
        """As ServeProcess.start, with the service's log kept in `log` (read it on failure)."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        with self.log.open("ab") as stderr:
            self.process = subprocess.Popen(
                [*ACGS, "serve", *self.args],
                env=self.env,
                stdout=subprocess.PIPE,
                stderr=stderr,
                text=True,
            )
        self._pump = threading.Thread(target=self._read, daemon=True)
        self._pump.start()
        return self


@pytest.fixture
def serve_process(tmp_path: Path) -> Iterator[list[FaultServe]]:
    """A list the test appends its started `acgs serve` processes to; each stopped by PID."""
    started: list[FaultServe] = []
    yield started
    for process in started:
        if process.process is not None:
            process.stop()


def start_worker(env: dict[str, str], log: Path, *only: str) -> subprocess.Popen[bytes]:
    """`acgs worker [--only ...]` with `env`, its output in `log`."""
    args = [arg for name in only for arg in ("--only", name)]
    with log.open("ab") as output:
        return subprocess.Popen(
            [*ACGS, "worker", *args], env=env, stdout=output, stderr=subprocess.STDOUT
        )


def stop_worker(worker: subprocess.Popen[bytes]) -> None:
    if worker.poll() is None:
        worker.send_signal(signal.SIGTERM)
        try:
            worker.wait(timeout=30)
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.wait()


def service_env(data_dir: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ACGS_")}
    env.update(ACGS_DATA_DIR=str(data_dir), ACGS_LOG_LEVEL="WARNING", **extra)
    return env


@dataclass
class RestartablePostgres:
    """A throwaway migrated cluster this test owns: stopped and started again on the same
    port and socket, so clients keep their connection string (the session's server is shared
    and never touched)."""

    server: EmbeddedPostgres
    url: str
    port: int = 0

    def stop(self) -> None:
        self._pg_ctl("-m", "immediate", "-w", "stop")

    def start(self) -> None:
        options = (
            f"-p {self.port} -c listen_addresses='' -k {self.server.socket_dir} "
            "-c max_connections=200 -c shared_buffers=128MB"
        )
        log = str(self.server.cluster_dir.resolve() / "server.log")
        self._pg_ctl("-w", "-s", "-l", log, "-o", options, "start")

    def _pg_ctl(self, *args: str) -> None:
        bin_dir = debian_bin_dir()
        assert bin_dir is not None, "the fault suite restarts Debian's PostgreSQL (as root)"
        argv = ["runuser", "-u", "postgres", "--", str(bin_dir / "pg_ctl")]
        argv += ["-D", str(self.server.cluster_dir.resolve()), *args]
        done = subprocess.run(argv, capture_output=True, text=True, check=False)
        assert done.returncode == 0, done.stderr


@pytest.fixture
def restartable_postgres() -> Iterator[RestartablePostgres]:
    if debian_bin_dir() is None or os.geteuid() != 0:
        pytest.fail("the PostgreSQL fault case needs Debian's postgresql package, run as root")
    with scratch_dir("acgs-fault-pg-") as data_dir:
        server = EmbeddedPostgres(data_dir)
        try:
            url = server.start()
            migrate(url)
            pid_file = server.cluster_dir / "postmaster.pid"
            port = int(pid_file.read_text().splitlines()[3])
            yield RestartablePostgres(server, url, port)
        finally:
            if server._running_port() is not None:
                server.started_here = True
                server.stop()


class Relaunchable:
    """A running peer process (found by a text of its command line) stopped by its PID and
    started again with the same command line and working directory, so it comes back on the
    same port with the same data. The relaunched process is this test's to stop (`close`)."""

    def __init__(self, mentioning: str, port: int, log: Path) -> None:
        [self.pid] = processes_mentioning(mentioning)
        raw = Path(f"/proc/{self.pid}/cmdline").read_bytes()
        self.argv = [part.decode() for part in raw.split(b"\0") if part]
        self.cwd = Path(f"/proc/{self.pid}/cwd").resolve()
        self.port, self.log = port, log
        self.relaunched: subprocess.Popen[bytes] | None = None

    def stop(self, sig: int = signal.SIGTERM) -> None:
        os.kill(self.pid, sig)
        wait_for(lambda: not alive(self.pid), timeout=15)

    def start(self) -> None:
        with self.log.open("ab") as out:
            self.relaunched = subprocess.Popen(
                self.argv, cwd=self.cwd, stdout=out, stderr=subprocess.STDOUT
            )
        self.pid = self.relaunched.pid
        wait_for(self._listening, timeout=30)

    def _listening(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), 0.2):
                return True
        except OSError:
            return False

    def close(self) -> None:
        if self.relaunched is not None and self.relaunched.poll() is None:
            self.relaunched.send_signal(signal.SIGTERM)
            try:
                self.relaunched.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.relaunched.kill()
                self.relaunched.wait()
