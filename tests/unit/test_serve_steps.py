"""`acgs serve`'s own steps without a server: a listener that cannot be bound says why, a stop
signal asked before the start ends it at its first step, and the handler ignores signals once
the stop is under way."""

from __future__ import annotations

import signal
import socket
from pathlib import Path

import click
import pytest

from api.cli.serve import _run, _run_copies, _Stopper, bind_listener
from api.settings import Settings


def test_an_address_of_no_interface_here_is_refused_with_the_reason() -> None:
    with pytest.raises(click.ClickException) as refused:
        bind_listener("192.0.2.1", 0)  # TEST-NET-1: bound nowhere on this machine
    assert refused.value.message.startswith("cannot listen on 192.0.2.1:0: ")


def test_a_port_in_use_names_the_options_that_change_it() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(click.ClickException, match=f"port {port} on 127.0.0.1 is already"):
            bind_listener("127.0.0.1", port)


def test_the_stopper_notes_a_signal_and_ignores_them_once_stopping() -> None:
    stopper = _Stopper()
    stopper(signal.SIGTERM, None)
    assert stopper.requested
    late = _Stopper()
    late.stopping = True
    late(signal.SIGINT, None)
    assert not late.requested
    with late.installed():
        assert signal.getsignal(signal.SIGTERM) is late
    assert signal.getsignal(signal.SIGTERM) is not late


@pytest.mark.parametrize("workers", [0, 2])
def test_a_stop_asked_before_the_start_ends_it_before_the_database(
    tmp_path: Path, workers: int
) -> None:
    # a database nobody listens on: reaching it would fail the test
    settings = Settings.from_env(
        {
            "ACGS_DATABASE_URL": "postgresql://nobody@127.0.0.1:9/none",
            "ACGS_DATA_DIR": str(tmp_path),
        }
    )
    stopper = _Stopper()
    stopper.requested = True
    with socket.socket() as listener:
        if workers:
            _run_copies(
                settings, kafka_local=False, workers=workers, listener=listener, stopper=stopper
            )
        else:
            _run(
                settings,
                kafka_local=False,
                host="127.0.0.1",
                port=0,
                listener=listener,
                stopper=stopper,
            )
    assert stopper.stopping
    assert list(tmp_path.iterdir()) == []
