"""`acgs serve`: the HTTP API, with projection runners in-process.

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
import signal
import socket
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
def serve(host: str | None, port: int | None, kafka_local: bool = False) -> None:
    """Serve the API; in the embedded profile, start PostgreSQL and migrate first.
    SIGTERM or Ctrl-C stops it (requests in flight finish first) and exits 0."""
    settings = Settings.from_env()
    configure_logging(settings.log_level)
    host = host or settings.http_host
    port = port or settings.http_port
    listener = bind_listener(host, port)
    with _Stopper().installed() as stopper:
        try:
            _run(settings, kafka_local or settings.kafka_local, host, port, listener, stopper)
        finally:
            stopper.stopping = True
            listener.close()
            click.echo("acgs: stopped")


def _run(
    settings: Settings,
    kafka_local: bool,
    host: str,
    port: int,
    listener: socket.socket,
    stopper: _Stopper,
) -> None:
    local_streaming: Any = None
    system: System | None = None
    try:
        if kafka_local:
            settings, local_streaming = start_local_streaming(settings)
        if stopper.requested:
            return
        system = build(settings)
        if stopper.requested:
            return
        system.start_workers()
        app = create_app(system)
        where = (
            "embedded PostgreSQL in " + str(settings.data_dir) if system.embedded else "PostgreSQL"
        )
        click.echo(f"acgs: using {where}")
        _print_bootstrap_token(system)
        config = uvicorn.Config(
            app,
            log_level="warning",
            access_log=False,
            timeout_graceful_shutdown=DRAIN_SECONDS,
        )
        server = _Server(
            config, lambda: click.echo(f"acgs: listening on http://{host}:{port}  (Ctrl-C stops)")
        )
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
