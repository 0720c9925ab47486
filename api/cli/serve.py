"""`acgs serve`: the HTTP API, with projection runners in-process.

`--workers N` (N > 1) runs N serving processes on one listening socket: this process binds the
port, starts what is shared (the embedded PostgreSQL and its migrations, the local Kafka broker),
prints the bootstrap token, then starts N copies of `acgs serve` that inherit the socket (the
kernel spreads connections over them) and use that database. Each copy is a whole API process
with its own pools and workers; workers that must run once (sinks, relay, health checks) take
a lease in the database, so only one copy runs each. A copy that dies is started again (at most
once a second); a stop signal goes to every copy, and the shared parts stop after the last.

Stopping: SIGTERM and SIGINT (Ctrl-C) both stop the service the same way, and it exits 0: it stops
accepting connections, lets requests in flight finish (at most DRAIN_SECONDS), stops the
projection runners and the relay, stops the local broker and the embedded PostgreSQL it started,
and says "stopped". A signal that arrives while it is still starting stops it the same way;
signals that arrive while it is stopping are ignored, so the stop is never cut short.

The port is bound before anything is started: a port in use is reported (naming it) before a
database is started, and "listening" is printed only once the server accepts connections.
"""

from __future__ import annotations

import contextlib
import errno
import gc
import getpass
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from types import FrameType
from typing import Any

import click
import uvicorn

from api.bootstrap import System, build
from api.cli.streaming import start_local_streaming
from api.http.app import create_app
from api.logging import configure_logging
from api.settings import Settings
from api.tokens import BOOTSTRAP_TTL_SECONDS, issue_as_operator
from domain.maci import MaciRole
from domain.tenancy import SYSTEM_TENANT_ID

BOOTSTRAP_MARKER = "bootstrap-token-issued"
DRAIN_SECONDS = 10
MAX_WORKERS = 32
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class _Server(uvicorn.Server):
    """uvicorn, with the signals left to `serve` (uvicorn would re-raise a caught SIGTERM after
    its shutdown, which kills the process before the database is stopped) and a callback once
    it accepts connections."""

    def __init__(self, config: uvicorn.Config, on_listening: Callable[[], None]) -> None:
        super().__init__(config)
        self._on_listening = on_listening

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        if self.started:
            self._on_listening()


class _Stopper:
    """The one handler of SIGINT and SIGTERM for the life of `serve`. Before the server runs, a
    signal is noted and the start ends at its next step (never in the middle of starting a
    database or a broker, which would leave it running); then it asks the server to shut down."""

    def __init__(self) -> None:
        self.server: _Server | None = None
        self.requested = False
        self.stopping = False

    def __call__(self, signum: int, frame: FrameType | None) -> None:
        if self.stopping:
            return
        self.requested = True
        if self.server is not None:
            self.server.handle_exit(signum, frame)

    @contextlib.contextmanager
    def installed(self) -> Iterator[_Stopper]:
        previous = {sig: signal.signal(sig, self) for sig in STOP_SIGNALS}
        try:
            yield self
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)


def bind_listener(host: str, port: int) -> socket.socket:
    """A socket bound to host:port (listening starts when the server starts)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            msg = (
                f"port {port} on {host} is already in use; stop what listens there or choose "
                "another port with --port or ACGS_HTTP_PORT"
            )
        else:
            msg = f"cannot listen on {host}:{port}: {exc.strerror or exc}"
        raise click.ClickException(msg) from None
    sock.set_inheritable(True)
    return sock


@click.command()
@click.option(
    "--host", default=None, help="Interface to bind (default ACGS_HTTP_HOST or 127.0.0.1)."
)
@click.option("--port", default=None, type=int, help="Port (default ACGS_HTTP_PORT or 8000).")
@click.option(
    "--kafka-local",
    is_flag=True,
    default=False,
    help="Also start a local Kafka broker and schema registry and stream to them "
    "(development; same as ACGS_KAFKA_LOCAL=1).",
)
@click.option(
    "--workers",
    default=1,
    type=click.IntRange(1, MAX_WORKERS),
    show_default=True,
    help="Serving processes sharing the port (each a whole API process).",
)
@click.option("--listen-fd", default=None, type=int, hidden=True)  # a copy started by --workers
def serve(
    host: str | None,
    port: int | None,
    kafka_local: bool = False,
    workers: int = 1,
    listen_fd: int | None = None,
) -> None:
    """Serve the API; in the embedded profile, start PostgreSQL and migrate first.
    SIGTERM or Ctrl-C stops it (requests in flight finish first) and exits 0."""
    settings = Settings.from_env()
    configure_logging(settings.log_level)
    host = host or settings.http_host
    port = port or settings.http_port
    if listen_fd is not None:
        listener = socket.socket(fileno=listen_fd)
    else:
        listener = bind_listener(host, port)
    with _Stopper().installed() as stopper:
        try:
            if workers > 1:
                _run_copies(
                    settings, kafka_local or settings.kafka_local, workers, listener, stopper
                )
            else:
                shared = listen_fd is not None
                _run(
                    settings, kafka_local or settings.kafka_local, host, port, listener, stopper,
                    shared=shared,
                )  # fmt: skip
        finally:
            stopper.stopping = True
            listener.close()
            click.echo("acgs: stopped")


class _Copies:
    """The serving copies of `--workers N`: started, started again when one dies (at most once a
    second), and stopped with SIGTERM (each drains its requests) when the parent stops."""

    def __init__(self, workers: int, listener: socket.socket, env: dict[str, str]) -> None:
        self.fd = listener.fileno()
        self.command = [sys.executable, "-m", "api.cli.main", "serve", "--listen-fd", str(self.fd)]
        self.env = env
        self.processes = [self._start() for _ in range(workers)]
        self.restarted_at = 0.0

    def _start(self) -> subprocess.Popen[bytes]:
        # Our own interpreter and module, fixed arguments: no input reaches the command line.
        return subprocess.Popen(self.command, env=self.env, pass_fds=[self.fd])  # noqa: S603  # nosec B603

    def watch(self, stopper: _Stopper) -> None:
        while not stopper.requested:
            for index, process in enumerate(self.processes):
                code = process.poll()
                if code is None or stopper.requested:
                    continue
                time.sleep(max(0.0, self.restarted_at + 1 - time.monotonic()))
                click.echo(f"acgs: serving process {process.pid} ended ({code}); starting another")
                self.processes[index] = self._start()
                self.restarted_at = time.monotonic()
            time.sleep(0.2)

    def stop(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in self.processes:
            try:
                process.wait(timeout=DRAIN_SECONDS + 20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def _run_copies(
    settings: Settings, kafka_local: bool, workers: int, listener: socket.socket, stopper: _Stopper
) -> None:
    """`--workers N`: the shared parts here, N serving copies of `acgs serve` as children."""
    local_streaming: Any = None
    system: System | None = None
    copies: _Copies | None = None
    try:
        env = dict(os.environ)
        if kafka_local:
            settings, local_streaming = start_local_streaming(settings)
            env["ACGS_KAFKA_BOOTSTRAP_SERVERS"] = settings.kafka_bootstrap_servers or ""
            env["ACGS_SCHEMA_REGISTRY_URL"] = settings.schema_registry_url or ""
        if stopper.requested:
            return
        # The embedded server is started (and migrated) here, once; each copy finds it running
        # on the same data directory and leaves it running when it stops.
        system = build(settings)
        where = f"embedded PostgreSQL in {settings.data_dir}" if system.embedded else "PostgreSQL"
        click.echo(f"acgs: using {where}")
        _print_bootstrap_token(system)
        if stopper.requested:
            return
        click.echo(f"acgs: {workers} serving processes")
        copies = _Copies(workers, listener, env)
        copies.watch(stopper)
    finally:
        stopper.stopping = True
        if copies is not None:
            copies.stop()
        if system is not None:
            system.close()
        if local_streaming is not None:
            local_streaming.stop()


def _run(
    settings: Settings,
    kafka_local: bool,
    host: str,
    port: int,
    listener: socket.socket,
    stopper: _Stopper,
    *,
    shared: bool = False,
) -> None:
    local_streaming: Any = None
    system: System | None = None
    try:
        if kafka_local and not shared:
            settings, local_streaming = start_local_streaming(settings)
        if stopper.requested:
            return
        system = build(settings, apply_migrations=False) if shared else build(settings)
        if stopper.requested:
            return
        system.start_workers()
        app = create_app(system)
        where = (
            "embedded PostgreSQL in " + str(settings.data_dir) if system.embedded else "PostgreSQL"
        )
        if not shared:
            click.echo(f"acgs: using {where}")
            _print_bootstrap_token(system)
        config = uvicorn.Config(
            app,
            log_level="warning",
            access_log=False,
            timeout_graceful_shutdown=DRAIN_SECONDS,
        )
        listening = f"acgs: listening on http://{host}:{port}  (Ctrl-C stops)"
        if shared:
            listening = f"acgs: serving process {os.getpid()} listening on http://{host}:{port}"
        server = _Server(config, lambda: click.echo(listening))
        stopper.server = server  # from now on a signal shuts the server down
        if stopper.requested:
            return
        settle_heap()
        server.run(sockets=[listener])
        if not server.started:
            msg = "the HTTP server did not start (see the log above)"
            raise click.ClickException(msg)
    finally:
        stopper.stopping = True
        if system is not None:
            system.close()
        if local_streaming is not None:
            local_streaming.stop()


def settle_heap() -> None:
    """Exempt what start-up built from the garbage collector's full collections.

    The composition root, the caches, the engines and the OpenAPI document are a heap of some
    270,000 container objects that live as long as the process; a full collection walks all of
    them (a quarter of a second measured on a busy 2-core machine), stalling every request in
    flight at a random moment. Frozen once, right before serving, they are skipped by every
    collection (the same collection then takes microseconds); they are still freed when their
    last reference goes.
    """
    gc.collect()
    gc.freeze()


def _print_bootstrap_token(system: System) -> None:
    """On the first start on a data directory, print one platform EXECUTIVE token (audited)."""
    marker = system.settings.data_dir / BOOTSTRAP_MARKER
    if marker.exists():
        return
    issued = issue_as_operator(
        system,
        getpass.getuser(),
        tenant_id=SYSTEM_TENANT_ID,
        roles=(MaciRole.EXECUTIVE,),
        sub="bootstrap-operator",
        ttl_seconds=BOOTSTRAP_TTL_SECONDS,
    )
    marker.write_text(f"{issued.jti}\n")
    click.echo(
        "acgs: first start - a platform EXECUTIVE token, valid 12 h, printed once "
        "(more with: acgs token issue --platform --role EXECUTIVE):"
    )
    click.echo(issued.token)
